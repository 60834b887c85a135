# Raw pointers into C-contiguous arrays (header-style: inlined where cimported).
#
# One buffer request, released at once: ~20 ns a call, where the usual idiom, a
# uint8 view of a record array and a typed memoryview of that, costs ~0.5 us, a
# fixed cost every batch call paid several times over. The caller keeps the array
# referenced while it uses the pointer, as it would keep a memoryview; a typed
# memoryview pins the data no better (numpy's resize(refcheck=False) ignores both).

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer


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
