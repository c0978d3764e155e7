#!/bin/sh
# deploy/make-certs.sh -- makes the certificates of a skiff cluster with
# openssl: a CA, one server/peer certificate per member, an administrator,
# the scheduler, the controller manager and one per node agent.
#
# Identities follow Kubernetes: the certificate's CN is the user and each
# O a group (docs/security.md).  Keys are ECDSA P-256, private (0600).
#
# Idempotent: a certificate that exists, chains to the CA, matches its key,
# names the wanted subject and SANs and is valid for 30 more days is kept;
# anything else is (re)made.  Only a missing CA is made anew, so running it
# again with more nodes adds their certificates and keeps the rest.
#
# usage: make-certs.sh [-d DIR] [--ip IP]... [--dns NAME]... [--member NAME]...
#                      [--node NAME]... [NODE]...
#   -d DIR       where the files go (default ./certs; made if missing)
#   --ip IP      an IP SAN of every member certificate (default 127.0.0.1)
#   --dns NAME   a DNS SAN of every member certificate (localhost always)
#   --member N   a member certificate N.crt (default one, "member")
#   --node N     a node agent certificate node-N.crt (CN=system:node:N,
#                O=system:nodes); bare arguments are node names too
set -eu

dir=./certs
ips=""
dnss="localhost"
members=""
nodes=""
days_ca=3650
days=365

usage() {
    sed -n '/^# usage:/,/^[^#]/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    -d) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
    --ip) [ $# -ge 2 ] || usage; ips="$ips $2"; shift 2 ;;
    --dns) [ $# -ge 2 ] || usage; dnss="$dnss $2"; shift 2 ;;
    --member) [ $# -ge 2 ] || usage; members="$members $2"; shift 2 ;;
    --node) [ $# -ge 2 ] || usage; nodes="$nodes $2"; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "make-certs.sh: unknown option $1" >&2; usage ;;
    *) nodes="$nodes $1"; shift ;;
    esac
done
[ -n "$ips" ] || ips=127.0.0.1
[ -n "$members" ] || members=member

command -v openssl >/dev/null || { echo "make-certs.sh: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

newkey() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$1" 2>/dev/null
    chmod 600 "$1"
}

# keep NAME SUBJECT SANS: true when NAME.crt/NAME.key can stay.
keep() {
    crt="$dir/$1.crt" key="$dir/$1.key"
    [ -s "$crt" ] && [ -s "$key" ] || return 1
    openssl verify -CAfile "$dir/ca.crt" "$crt" >/dev/null 2>&1 || return 1
    openssl x509 -in "$crt" -noout -checkend 2592000 >/dev/null 2>&1 || return 1
    # The key must be the certificate's.
    a=$(openssl x509 -in "$crt" -noout -pubkey 2>/dev/null) || return 1
    b=$(openssl pkey -in "$key" -pubout 2>/dev/null) || return 1
    [ "$a" = "$b" ] || return 1
    [ "$(openssl x509 -in "$crt" -noout -subject -nameopt compat)" = \
      "subject=$2" ] || return 1
    # Exactly the wanted SANs, in openssl's spelling ("IP Address:").
    have=$(openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null |
        sed -n '2s/^ *//p')
    want=$(echo "$3" | sed 's/IP:/IP Address:/g; s/,/, /g')
    [ "$have" = "$want" ]
}

# cert NAME SUBJECT EKU [SANS]: signs NAME.crt for SUBJECT with the CA.
cert() {
    # sh has no locals: these names are cert()'s alone.
    name=$1 subj=$2 eku=$3 csans=${4:-}
    if keep "$name" "$subj" "$csans"; then
        echo "kept  $dir/$name.crt  $subj${csans:+  $csans}"
        return
    fi
    newkey "$dir/$name.key"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$eku"
        echo "subjectKeyIdentifier=hash"
        echo "authorityKeyIdentifier=keyid"
        [ -z "$csans" ] || echo "subjectAltName=$csans"
    } >"$tmp/ext"
    openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$tmp/csr" \
        2>/dev/null
    openssl x509 -req -in "$tmp/csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days "$days" \
        -extfile "$tmp/ext" -out "$dir/$name.crt" 2>/dev/null
    chmod 644 "$dir/$name.crt"
    echo "made  $dir/$name.crt  $subj${csans:+  $csans}"
}

# The CA: made only when missing, because remaking it would orphan every
# certificate already handed out.
if [ -s "$dir/ca.crt" ] && [ -s "$dir/ca.key" ]; then
    echo "kept  $dir/ca.crt  $(openssl x509 -in "$dir/ca.crt" -noout -subject -nameopt compat | sed 's/^subject=//')"
else
    newkey "$dir/ca.key"
    openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=skiff-ca" \
        -days "$days_ca" -out "$dir/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 644 "$dir/ca.crt"
    echo "made  $dir/ca.crt  /CN=skiff-ca"
fi

msans=""
for d in $dnss; do msans="$msans${msans:+,}DNS:$d"; done
for i in $ips; do msans="$msans,IP:$i"; done

# Members serve clients and peers and dial peers: both key usages.
for m in $members; do
    cert "$m" "/O=system:members/CN=$m" serverAuth,clientAuth "$msans,DNS:$m"
done
cert admin "/O=system:masters/CN=admin" clientAuth
cert kube-scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
for n in $nodes; do
    cert "node-$n" "/O=system:nodes/CN=system:node:$n" clientAuth
done
