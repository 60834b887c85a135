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
        /* Up to 3.11 the sign is the size's: at most two 30-bit (or 15-bit) digits. Tests,
           not a switch: GCC makes a switch a jump table, and its indirect jump mispredicted
           about once a call when the arguments mixed sizes and signs. */
        const digit* d = ((PyLongObject*)o)->ob_digit;
        Py_ssize_t size = Py_SIZE(o);
        if (size == 1) {                    /* the common case: 0 < o < 2**30 */
            *out = (int64_t)d[0];
            return 1;
        }
        if (size == 0) {
            *out = 0;
            return 1;
        }
        Py_ssize_t digits = size < 0 ? -size : size;
        if (digits > 2)
            return 0;
        int64_t whole = (int64_t)d[0];
        if (digits == 2)
            whole |= (int64_t)d[1] << PyLong_SHIFT;
        *out = size < 0 ? -whole : whole;
        return 1;
    #endif
    }
    """
    bint small_int "obelisk_small_int"(object value, int64_t* out) noexcept
