#!/bin/sh
# jepsen/suite.sh short|long JEPSEN_RUN
#
# Runs a list of jepsen-run invocations and compares each outcome with
# what it must be: "valid" runs must exit 0; the unsafe-switch runs must
# be reported invalid (exit 1) *for the right reason* (a grep on
# results.json), otherwise the suite fails: a checker that cannot see a
# planted bug proves nothing.  Likewise a netem run must show that its
# faults went through jepsen-netq.  One line per run; a summary at the end.
#   short: every workload and every nemesis at least once, plus the three
#          unsafe switches; under 10 minutes on 2 cores (make test).
#   long:  longer runs, 5 members, every workload under every nemesis.
set -u
mode=${1:-short}
run=${2:?usage: suite.sh short|long path/to/jepsen-run}
fails=0
total=0
log=$(mktemp)

# expect NAME EXPECT PATTERN -- ARGS...: EXPECT is valid or invalid;
# PATTERN (for invalid) must occur in results.json.
expect() {
    name=$1 want=$2 pat=$3
    shift 4
    total=$((total + 1))
    start=$(date +%s)
    "$run" "$@" >"$log" 2>&1
    rc=$?
    dir=$(sed -n 's/^jepsen: results in //p' "$log" | tail -n 1)
    got=error
    case $rc in 0) got=valid ;; 1) got=invalid ;; 2) got=unknown ;; esac
    ok=no
    if [ "$want" = valid ] && [ $rc -eq 0 ]; then ok=yes; fi
    if [ "$want" = invalid ] && [ $rc -eq 1 ] && [ -n "$dir" ] &&
        grep -q -- "$pat" "$dir/results.json"; then ok=yes; fi
    printf '%-4s %-28s want %-7s got %-7s %4ss  %s\n' \
        "$([ $ok = yes ] && echo PASS || echo FAIL)" "$name" "$want" "$got" \
        $(( $(date +%s) - start )) "${dir:-(no results)}"
    if [ $ok != yes ]; then
        fails=$((fails + 1))
        sed 's/^/    | /' "$log" | tail -n 8
    fi
}

# netem_applied NAME: the run just made by expect really disturbed the
# network: jepsen-netq's counters show queued packets after the setup
# probe, no netq failed, and the run did not fall back to iptables loss.
netem_applied() {
    total=$((total + 1))
    log_=${dir:+$dir/nemesis.log}
    ok=no
    if [ -n "$log_" ] && [ -f "$log_" ] &&
        [ "$(grep -c 'netq n[0-9]*: packets=[1-9]' "$log_")" -ge 2 ] &&
        ! grep -q 'netq .*FAILED\|did not start\|NETEM FALLBACK' "$log_" &&
        grep -q '"netem_fallback":false' "$dir/results.json"; then
        ok=yes
    fi
    printf '%-4s %-28s netem faults went through jepsen-netq  %s\n' \
        "$([ $ok = yes ] && echo PASS || echo FAIL)" "$1" "${log_:-(no log)}"
    [ $ok = yes ] || fails=$((fails + 1))
}

"$run" --cleanup >/dev/null 2>&1
common="--concurrency 5 --rate 100 --interval 1"
if [ "$mode" = short ]; then
    expect register-crash       valid   "" -- --workload register --nemesis kill,pause,partition --time-limit 24 --seed 1 $common
    expect append-net-clock     valid   "" -- --workload append --nemesis netem,clock,admin --time-limit 24 --seed 2 $common
    netem_applied append-net-clock
    expect watch-faults         valid   "" -- --workload watch --nemesis kill,partition,admin --time-limit 24 --seed 3 --concurrency 3 --rate 60 --interval 1
    expect lease-faults         valid   "" -- --workload lease --nemesis pause,clock,kill --time-limit 24 --seed 4 --concurrency 4 --rate 40 --interval 1
    expect append-disk          valid   "" -- --workload append --nemesis disk,kill --kill-all --time-limit 24 --seed 5 $common
    expect register-member      valid   "" -- --workload register --nemesis member --time-limit 24 --seed 6 $common
    expect unsafe-local-reads   invalid '"nonlinearizable"' -- --workload register --nemesis partition --unsafe local-reads --time-limit 24 --seed 7 $common
    expect unsafe-no-fsync      invalid '"acknowledged_appends_lost":[1-9]' -- --workload append --nemesis kill --kill-all --unsafe no-fsync --time-limit 20 --seed 8 $common
    expect unsafe-drop-watch    invalid '"missing-event"' -- --workload watch --nemesis none --unsafe drop-watch-event --time-limit 15 --seed 9 --concurrency 3 --rate 60
else
    seed=100
    for wl in register append watch lease; do
        for nem in kill pause partition netem clock member admin disk \
                   kill,pause,partition,netem,clock,member,admin,disk; do
            seed=$((seed + 1))
            expect "$wl-$nem-5" valid "" -- --workload $wl --nemesis $nem --nodes 5 --time-limit 90 --seed $seed --interval 3 --concurrency 8 --rate 150
        done
    done
    expect unsafe-local-reads   invalid '"nonlinearizable"' -- --workload register --nemesis partition --unsafe local-reads --time-limit 60 --seed 7 $common
    expect unsafe-no-fsync      invalid '"acknowledged_appends_lost":[1-9]' -- --workload append --nemesis kill --kill-all --unsafe no-fsync --time-limit 60 --seed 8 $common
    expect unsafe-drop-watch    invalid '"missing-event"' -- --workload watch --nemesis kill --unsafe drop-watch-event --time-limit 60 --seed 9 --concurrency 3 --rate 60
fi
rm -f "$log"
echo "jepsen suite ($mode): $((total - fails)) of $total runs as expected"
[ $fails -eq 0 ]
