/*
 * api/objects/quantity.h -- Kubernetes resource quantities ("500m",
 * "1.5Gi", "12e6") parsed into an exact fixed-point value.
 *
 * A quantity is held as whole base units plus nanounits, both carrying the
 * quantity's sign (like google.protobuf.Duration), so every value Kubernetes
 * keeps (nano precision, magnitude up to 2^63-1 base units) is exact.  All
 * functions are pure and may be called from any thread, except
 * obj_err_register (see there).
 */
#ifndef SKIFF_OBJ_QUANTITY_H
#define SKIFF_OBJ_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

/* ---- errors: the objects block, -5500..-5599 ---------------------------- */
#define OBJ_ERRNO_MAP(XX)                                                      \
    XX(OBJ_EQUANTITY_FORMAT, -5500,                                            \
       "quantity must match <sign><digits>[.<digits>][suffix]")                \
    XX(OBJ_EQUANTITY_RANGE, -5501,                                             \
       "quantity is outside the supported range (|q| <= 2^63-1)")         \
    XX(OBJ_EDECODE, -5502, "manifest does not decode")                        \
    XX(OBJ_EINVALID, -5503, "object is invalid")

enum obj_errno {
#define XX(name, val, msg) name = (val),
    OBJ_ERRNO_MAP(XX)
#undef XX
};

#define OBJ_ERR_LO (-5599)
#define OBJ_ERR_HI (-5500)

/* Message for an OBJ_* code; "unknown error" for any other.  Static. */
const char *obj_strerror(int code);
/* Symbolic name ("OBJ_EQUANTITY_FORMAT"); "EUNKNOWN" for other codes. */
const char *obj_err_name(int code);
/* Registers the block with cm_err_register so cm_strerror/cm_err_name know
 * these codes.  Idempotent; call once at startup, before threads start. */
void obj_err_register(void);

/* ---- quantities --------------------------------------------------------- */

/* How a quantity was written; it selects the canonical form's suffixes. */
typedef enum obj_qformat {
    OBJ_QF_DECIMAL_SI = 0, /* n u m "" k M G T P E (also no suffix) */
    OBJ_QF_BINARY_SI,      /* Ki Mi Gi Ti Pi Ei */
    OBJ_QF_DECIMAL_EXP     /* e3, E-2, ... */
} obj_qformat;

/* value = whole + nano / 10^9.  whole and nano never have opposite signs,
 * |nano| < 10^9 and |value| <= 2^63-1.  Zero is {0, 0}.  Compare with
 * obj_quantity_cmp, not memcmp (the format field does not take part). */
typedef struct obj_quantity {
    int64_t whole;
    int32_t nano;
    obj_qformat format;
} obj_quantity;

/* Longest canonical string, including the NUL. */
#define OBJ_QUANTITY_STRMAX 40

/* Parses a Kubernetes quantity: an optional sign, digits with an optional
 * fraction ("1", "1.", ".5", "1.25"), then one optional suffix: binary SI
 * (Ki Mi Gi Ti Pi Ei), decimal SI (n u m k M G T P E) or a decimal exponent
 * (e or E then an optional sign and digits).  No spaces.  Digits below a
 * nanounit round the magnitude up to the next nanounit ("0.1n" -> 1n).
 *   s:   NUL-terminated, borrowed for the call.
 *   out: written only on success.
 * Returns 0, OBJ_EQUANTITY_FORMAT (empty, malformed, unknown suffix, no
 * digits) or OBJ_EQUANTITY_RANGE (magnitude over 2^63-1 base units). */
int obj_quantity_parse(const char *s, obj_quantity *out);

/* Thousandths of a unit (CPU millicores), magnitude rounded up: 0.5 ->
 * 500, 1n -> 1, -1n -> -1.  Saturates at INT64_MAX / -INT64_MAX when the
 * quantity is over about 9.2e15 units. */
int64_t obj_quantity_milli(const obj_quantity *q);

/* Whole units (bytes for memory), magnitude rounded up: 100m -> 1,
 * 1.5Gi -> 1610612736.  Never overflows. */
int64_t obj_quantity_value(const obj_quantity *q);

/* -1, 0 or 1 as a is less than, equal to or greater than b by value. */
int obj_quantity_cmp(const obj_quantity *a, const obj_quantity *b);

/* Kubernetes' canonical string: the largest suffix of q's format that
 * keeps an integer mantissa ("1000m" -> "1", "2048Ki" -> "2Mi",
 * "1.5Gi" -> "1536Mi").  A binary quantity under 1024 in magnitude or with
 * a fraction is written in decimal SI ("0.5Ki" -> "512").  Parsing the
 * result gives an equal quantity.
 *   buf/cap: caller's buffer; OBJ_QUANTITY_STRMAX always suffices.
 * Returns 0 or CM_ETOOBIG (buf holds "" when cap > 0). */
int obj_quantity_format(const obj_quantity *q, char *buf, size_t cap);

#endif
