# Raw pointers into C-contiguous arrays (header-style: inlined where cimported).
#
# One buffer request, released at once: ~20 ns a call, where the usual idiom, a
# uint8 view of a record array and a typed memoryview of that, costs ~0.5 us, a
# fixed cost every batch call paid several times over. The caller keeps the array
# referenced while it uses the pointer, as it would keep a memoryview; a typed
# memoryview pins the data no better (numpy's resize(refcheck=False) ignores both).

from cpython.buffer cimport (
    PyBUF_C_CONTIGUOUS,
    PyBUF_FORMAT,
    PyBUF_SIMPLE,
    PyBUF_WRITABLE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from libc.string cimport strchr


cdef inline void* data_of(object array) except? NULL:
    """The first byte of `array`, to write; raises for a non-contiguous or read-only one."""
    cdef Py_buffer view
    PyObject_GetBuffer(array, &view, PyBUF_SIMPLE | PyBUF_WRITABLE)
    cdef void* data = view.buf
    PyBuffer_Release(&view)
    return data


cdef inline const void* const_data_of(object array) except? NULL:
    """The first byte of `array`, to read; raises for a non-contiguous one."""
    cdef Py_buffer view
    PyObject_GetBuffer(array, &view, PyBUF_SIMPLE)
    cdef const void* data = view.buf
    PyBuffer_Release(&view)
    return data


cdef inline const void* column_of(object array, char kind, Py_ssize_t itemsize, bint writable,
                                  Py_ssize_t* length, str name) except? NULL:
    """The first element and the length of a C-contiguous one-dimensional array of native
    integers: `kind` b'i' signed, b'u' unsigned, of `itemsize` bytes (and writable when
    asked); TypeError naming `name` for anything else. The same one buffer request as
    ``data_of``, with the format checked, where a typed memoryview costs ~0.2 us."""
    cdef Py_buffer view
    cdef const char* letters = b"bhilq" if kind == b"i" else b"BHILQ"
    cdef const char* code
    cdef bint fits
    try:
        PyObject_GetBuffer(array, &view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS
                           | (PyBUF_WRITABLE if writable else 0))
    except (BufferError, TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a contiguous{' writable' if writable else ''} "
                        f"array of {'u' if kind == b'u' else ''}int{8 * itemsize}: "
                        f"{exc}") from None
    code = view.format
    if code == NULL:
        code = b"B"
    if code[0] == b"@" or code[0] == b"=":      # native order, said outright
        code += 1
    fits = view.ndim == 1 and view.itemsize == itemsize and code[0] != 0 \
        and code[1] == 0 and strchr(letters, code[0]) != NULL
    cdef const void* data = view.buf
    length[0] = view.shape[0] if view.ndim == 1 else 0
    PyBuffer_Release(&view)
    if not fits:
        raise TypeError(f"{name} must be a one-dimensional array of "
                        f"{'u' if kind == b'u' else ''}int{8 * itemsize}, not of "
                        f"{getattr(array, 'dtype', type(array).__name__)} "
                        f"with {getattr(array, 'ndim', '?')} dimensions")
    return data
