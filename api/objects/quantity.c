/*
 * Kubernetes resource quantities.
 *
 * Kubernetes keeps a quantity to nanounit precision and caps its magnitude
 * at 2^63-1 base units; anything finer is rounded up (away from zero).  We
 * keep exactly that much: whole units plus nanounits, with one sign.
 *
 * Parsing never does floating point.  The digits are laid out on a decimal
 * fixed-point register, one digit per power of ten from 10^-40 up to 10^19,
 * after shifting by the suffix's power of ten.  A nonzero digit at 10^20 or
 * above is out of range; one below 10^-40 only sets a "sticky" flag, since
 * all that matters about it is that the value is not on the nanounit grid.
 * A binary suffix then multiplies the register by 1024 once per step (Ki =
 * one step, Ei = six); 2^60 times anything dropped below 10^-40 is still far
 * below a nanounit, so the sticky flag stays truthful.  Finally the digits
 * below 10^-9 are rounded up into the nanounits and the range is checked.
 * The register is a fixed array, so arbitrarily long inputs cost no memory
 * and exponents are clamped before they can overflow.
 *
 * Formatting follows Kubernetes' canonical form: the largest power of 1000
 * (or 1024 for binary quantities of at least 1024 whole units) that leaves
 * an integer mantissa.  The mantissa is printed from whole and nano
 * separately, so a value near 2^63 with nanounits never needs 128 bits.
 */
#include "quantity.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cm.h"

#define REG_LO 40 /* register index 0 holds 10^-40 */
#define REG_HI 20 /* first power of ten that is out of range */
#define REG_N (REG_LO + REG_HI)
#define NANO 1000000000
/* An exponent this large already puts every digit of any real string
 * outside the register, so larger ones are clamped to it. */
#define EXP_CLAMP 1000000000000000LL

typedef struct reg {
    uint8_t d[REG_N]; /* d[i] is the digit of 10^(i - REG_LO) */
    bool sticky;      /* a nonzero digit below 10^-40 was dropped */
} reg;

static const struct {
    char c;
    int exp10;
} dec_suffixes[] = {
    {'n', -9}, {'u', -6}, {'m', -3}, {'k', 3},  {'M', 6},
    {'G', 9},  {'T', 12}, {'P', 15}, {'E', 18},
};

static const char bin_letters[] = "KMGTPE"; /* Ki = 1024^1 ... */
static const char *const dec_names[] = {"n", "u", "m", "",  "k",
                                        "M", "G", "T", "P", "E"};
static const char *const bin_names[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};

static int parse_suffix(const char *p, obj_qformat *fmt, long long *exp10,
                        int *bin_steps);
static int place_digit(reg *r, long long pw, int digit);
static int mul1024(reg *r);
static int reg_to_quantity(const reg *r, bool neg, obj_qformat fmt,
                           obj_quantity *out);
static bool is_digit(char c);

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads the suffix starting at p, which must run to the end of the
 * string. */
static int parse_suffix(const char *p, obj_qformat *fmt, long long *exp10,
                        int *bin_steps)
{
    *fmt = OBJ_QF_DECIMAL_SI;
    *exp10 = 0;
    *bin_steps = 0;
    if (*p == '\0')
        return 0;
    if (p[1] == '\0') {
        for (size_t i = 0; i < sizeof dec_suffixes / sizeof *dec_suffixes; i++)
            if (dec_suffixes[i].c == *p) {
                *exp10 = dec_suffixes[i].exp10;
                return 0;
            }
    }
    if (p[1] == 'i' && p[2] == '\0') {
        const char *at = strchr(bin_letters, *p);
        if (at && *p != '\0') {
            *fmt = OBJ_QF_BINARY_SI;
            *bin_steps = (int)(at - bin_letters) + 1;
            return 0;
        }
        return OBJ_EQUANTITY_FORMAT;
    }
    if (*p != 'e' && *p != 'E')
        return OBJ_EQUANTITY_FORMAT;
    p++;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!is_digit(*p))
        return OBJ_EQUANTITY_FORMAT;
    long long e = 0;
    for (; is_digit(*p); p++)
        if (e < EXP_CLAMP)
            e = e * 10 + (*p - '0');
    if (*p != '\0')
        return OBJ_EQUANTITY_FORMAT;
    *fmt = OBJ_QF_DECIMAL_EXP;
    *exp10 = neg ? -e : e;
    return 0;
}

static int place_digit(reg *r, long long pw, int digit)
{
    if (digit == 0)
        return 0;
    if (pw >= REG_HI)
        return OBJ_EQUANTITY_RANGE;
    if (pw < -REG_LO) {
        r->sticky = true;
        return 0;
    }
    r->d[pw + REG_LO] = (uint8_t)digit;
    return 0;
}

static int mul1024(reg *r)
{
    unsigned carry = 0;
    for (int i = 0; i < REG_N; i++) {
        unsigned v = r->d[i] * 1024u + carry;
        r->d[i] = (uint8_t)(v % 10);
        carry = v / 10;
    }
    return carry ? OBJ_EQUANTITY_RANGE : 0;
}

/* Rounds the register up to nanounits and checks |value| <= 2^63-1. */
static int reg_to_quantity(const reg *r, bool neg, obj_qformat fmt,
                           obj_quantity *out)
{
    bool round_up = r->sticky;
    for (int i = 0; i < REG_LO - 9 && !round_up; i++)
        round_up = r->d[i] != 0;
    uint32_t nano = 0;
    for (int i = REG_LO - 1; i >= REG_LO - 9; i--)
        nano = nano * 10 + r->d[i];
    uint64_t whole = 0;
    for (int i = REG_N - 1; i >= REG_LO; i--) {
        if (whole > (UINT64_MAX - r->d[i]) / 10)
            return OBJ_EQUANTITY_RANGE;
        whole = whole * 10 + r->d[i];
    }
    if (round_up && ++nano == NANO) {
        nano = 0;
        if (whole == UINT64_MAX)
            return OBJ_EQUANTITY_RANGE;
        whole++;
    }
    if (whole > INT64_MAX || (whole == INT64_MAX && nano != 0))
        return OBJ_EQUANTITY_RANGE;
    if (neg) {
        out->whole = -(int64_t)whole;
        out->nano = -(int32_t)nano;
    } else {
        out->whole = (int64_t)whole;
        out->nano = (int32_t)nano;
    }
    out->format = fmt;
    return 0;
}

/* ---- public -------------------------------------------------------------- */

const char *obj_strerror(int code)
{
    switch (code) {
#define XX(name, val, msg)                                                     \
    case val:                                                                  \
        return msg;
        OBJ_ERRNO_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *obj_err_name(int code)
{
    switch (code) {
#define XX(name, val, msg)                                                     \
    case val:                                                                  \
        return #name;
        OBJ_ERRNO_MAP(XX)
#undef XX
    }
    return "EUNKNOWN";
}

static const char *lookup_msg(int code)
{
    const char *m = obj_strerror(code);
    return strcmp(m, "unknown error") == 0 ? NULL : m;
}

static const char *lookup_name(int code)
{
    const char *n = obj_err_name(code);
    return strcmp(n, "EUNKNOWN") == 0 ? NULL : n;
}

void obj_err_register(void)
{
    cm_err_register(OBJ_ERR_LO, OBJ_ERR_HI, lookup_msg, lookup_name);
}

int obj_quantity_parse(const char *s, obj_quantity *out)
{
    if (s == NULL || out == NULL)
        return OBJ_EQUANTITY_FORMAT;
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    const char *ip = p;
    while (is_digit(*p))
        p++;
    size_t nint = (size_t)(p - ip);
    const char *fp = p;
    size_t nfrac = 0;
    if (*p == '.') {
        fp = ++p;
        while (is_digit(*p))
            p++;
        nfrac = (size_t)(p - fp);
    }
    if (nint + nfrac == 0)
        return OBJ_EQUANTITY_FORMAT;

    obj_qformat fmt;
    long long exp10;
    int steps;
    int rc = parse_suffix(p, &fmt, &exp10, &steps);
    if (rc)
        return rc;

    /* Leading zeros carry no value; skipping them keeps the power of a
     * long run of zeros from mattering. */
    while (nint > 0 && *ip == '0') {
        ip++;
        nint--;
    }
    reg r;
    memset(&r, 0, sizeof r);
    for (size_t i = 0; i < nint; i++) {
        long long pw = (long long)(nint - 1 - i) + exp10;
        if ((rc = place_digit(&r, pw, ip[i] - '0')))
            return rc;
    }
    for (size_t i = 0; i < nfrac; i++) {
        long long pw = exp10 - 1 - (long long)i;
        if ((rc = place_digit(&r, pw, fp[i] - '0')))
            return rc;
    }
    for (int i = 0; i < steps; i++)
        if ((rc = mul1024(&r)))
            return rc;
    return reg_to_quantity(&r, neg, fmt, out);
}

int64_t obj_quantity_milli(const obj_quantity *q)
{
    bool neg = q->whole < 0 || q->nano < 0;
    uint64_t whole =
        neg ? (uint64_t)0 - (uint64_t)q->whole : (uint64_t)q->whole;
    uint32_t nano = (uint32_t)(neg ? -q->nano : q->nano);
    uint64_t add = (nano + 999999u) / 1000000u;
    uint64_t m;
    if (whole > (uint64_t)INT64_MAX / 1000)
        m = INT64_MAX;
    else {
        m = whole * 1000;
        m = m > (uint64_t)INT64_MAX - add ? (uint64_t)INT64_MAX : m + add;
    }
    return neg ? -(int64_t)m : (int64_t)m;
}

int64_t obj_quantity_value(const obj_quantity *q)
{
    if (q->nano > 0)
        return q->whole + 1;
    if (q->nano < 0)
        return q->whole - 1;
    return q->whole;
}

int obj_quantity_cmp(const obj_quantity *a, const obj_quantity *b)
{
    if (a->whole != b->whole)
        return a->whole < b->whole ? -1 : 1;
    if (a->nano != b->nano)
        return a->nano < b->nano ? -1 : 1;
    return 0;
}

int obj_quantity_format(const obj_quantity *q, char *buf, size_t cap)
{
    bool neg = q->whole < 0 || q->nano < 0;
    uint64_t whole =
        neg ? (uint64_t)0 - (uint64_t)q->whole : (uint64_t)q->whole;
    uint32_t nano = (uint32_t)(neg ? -q->nano : q->nano);
    const char *sign = neg ? "-" : "";
    obj_qformat fmt = q->format;
    if (fmt == OBJ_QF_BINARY_SI && (nano != 0 || whole < 1024))
        fmt = OBJ_QF_DECIMAL_SI;
    int n;

    if (nano != 0) {
        /* 3 digits of fraction per step: m, u, then n. */
        int fdig = nano % 1000000 == 0 ? 3 : nano % 1000 == 0 ? 6 : 9;
        uint32_t frac = nano;
        for (int i = fdig; i < 9; i++)
            frac /= 10;
        char suf[8];
        if (fmt == OBJ_QF_DECIMAL_EXP)
            snprintf(suf, sizeof suf, "e-%d", fdig);
        else
            snprintf(suf, sizeof suf, "%s", dec_names[3 - fdig / 3]);
        if (whole != 0)
            n = snprintf(buf, cap, "%s%llu%0*lu%s", sign,
                         (unsigned long long)whole, fdig, (unsigned long)frac,
                         suf);
        else
            n = snprintf(buf, cap, "%s%lu%s", sign, (unsigned long)frac, suf);
    } else if (fmt == OBJ_QF_BINARY_SI) {
        int k = 0;
        while (k < 6 && whole % 1024 == 0) {
            whole /= 1024;
            k++;
        }
        n = snprintf(buf, cap, "%s%llu%s", sign, (unsigned long long)whole,
                     bin_names[k]);
    } else {
        int k = 0;
        while (whole != 0 && k < 6 && whole % 1000 == 0) {
            whole /= 1000;
            k++;
        }
        if (fmt == OBJ_QF_DECIMAL_EXP && k > 0)
            n = snprintf(buf, cap, "%s%llue%d", sign, (unsigned long long)whole,
                         3 * k);
        else
            n = snprintf(buf, cap, "%s%llu%s", sign, (unsigned long long)whole,
                         fmt == OBJ_QF_DECIMAL_EXP ? "" : dec_names[3 + k]);
    }
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            buf[0] = '\0';
        return CM_ETOOBIG;
    }
    return 0;
}
