# Exact small ints from Python objects, for the per-call entry points (header-style:
# inlined where cimported).
#
# Those entry points take ticks, lots and ids as plain objects, so that a float is
# refused instead of truncated (Cython's conversion of a typed argument truncates).
# Testing the type and then converting costs two checks per argument; this reads an
# exact int that fits in one or two machine digits straight from the object. Anything
# else (a bigger int, a numpy integer, a float) takes the caller's slow path.

from libc.stdint cimport int64_t


cdef extern from *:
    """
    #include <stdint.h>
    static inline int obelisk_small_int(PyObject* o, int64_t* out) {
        if (!PyLong_CheckExact(o))
            return 0;
    #if PY_VERSION_HEX >= 0x030C0000
        if (!PyUnstable_Long_IsCompact((PyLongObject*)o))
            return 0;
        *out = (int64_t)PyUnstable_Long_CompactValue((PyLongObject*)o);
        return 1;
    #else
        /* Up to 3.11 the sign is the size's: at most two 30-bit (or 15-bit) digits. */
        const digit* d = ((PyLongObject*)o)->ob_digit;
        switch (Py_SIZE(o)) {
        case 0: *out = 0; return 1;
        case 1: *out = (int64_t)d[0]; return 1;
        case -1: *out = -(int64_t)d[0]; return 1;
        case 2: *out = (int64_t)d[0] | ((int64_t)d[1] << PyLong_SHIFT); return 1;
        case -2: *out = -((int64_t)d[0] | ((int64_t)d[1] << PyLong_SHIFT)); return 1;
        default: return 0;
        }
    #endif
    }
    """
    bint small_int "obelisk_small_int"(object value, int64_t* out) noexcept
