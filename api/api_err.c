/*
 * Mapping internal error codes to the wire's ErrorCode.  The server sends
 * the code plus the internal message; clients switch on the code.
 */
#include "api.h"

#include <errno.h>
#include <string.h>

/* kv.h's codes, by value, so api/ does not depend on storage/. */
Skiffpb__ErrorCode api_code_from_err(int err)
{
    switch (err) {
    case 0:
        return SKIFFPB__ERROR_CODE__OK;
    case -2001:
        return SKIFFPB__ERROR_CODE__COMPACTED;
    case -2002:
        return SKIFFPB__ERROR_CODE__FUTURE_REV;
    case -2003:
        return SKIFFPB__ERROR_CODE__KEY_TOO_LARGE;
    case -2004:
        return SKIFFPB__ERROR_CODE__VALUE_TOO_LARGE;
    case -2005:
        return SKIFFPB__ERROR_CODE__EMPTY_KEY;
    case -2006:
        return SKIFFPB__ERROR_CODE__NO_SPACE;
    case -2007:
        return SKIFFPB__ERROR_CODE__LEASE_NOT_FOUND;
    case -2008:
        return SKIFFPB__ERROR_CODE__LEASE_EXISTS;
    case -2009:
        return SKIFFPB__ERROR_CODE__TOO_MANY_OPS;
    case -2010:
        return SKIFFPB__ERROR_CODE__DUPLICATE_KEY;
    case -2011:
        return SKIFFPB__ERROR_CODE__KEY_NOT_FOUND;
    case -2012:
        return SKIFFPB__ERROR_CODE__VALUE_PROVIDED;
    case -2013:
        return SKIFFPB__ERROR_CODE__LEASE_PROVIDED;
    case -2014:
        return SKIFFPB__ERROR_CODE__INVALID_ARGUMENT;
    case -2016:
        return SKIFFPB__ERROR_CODE__DATA_CORRUPT;
    case -2020:
        return SKIFFPB__ERROR_CODE__LEASE_TTL_INVALID;
    case -2021:
        return SKIFFPB__ERROR_CODE__MEMBER_EXISTS;
    case -2022:
        return SKIFFPB__ERROR_CODE__MEMBER_NOT_FOUND;
    case CM_ETOOBIG:
        return SKIFFPB__ERROR_CODE__REQUEST_TOO_LARGE;
    case CM_EINVAL:
        return SKIFFPB__ERROR_CODE__INVALID_ARGUMENT;
    case -ETIMEDOUT:
        return SKIFFPB__ERROR_CODE__TIMEOUT;
    default:
        return SKIFFPB__ERROR_CODE__UNAVAILABLE;
    }
}

const char *api_code_name(Skiffpb__ErrorCode code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&skiffpb__error_code__descriptor,
                                             (int)code);
    return v ? v->name : "UNKNOWN";
}

int api_code_parse(const char *name)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(
        &skiffpb__error_code__descriptor, name);
    return v ? v->value : -1;
}
