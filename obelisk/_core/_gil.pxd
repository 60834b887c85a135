# Releasing the GIL only for work worth it (header-style: inlined where cimported).
#
# Handing the interpreter over and taking it back costs a few microseconds when another
# thread wants it (a trace writer, a websocket), each way a thread switch: more than a
# small batch's work. So the batch loops release it from RELEASE_GIL_FROM items on:
# below that they run holding it, as any short C call does. Between release_gil_if and
# restore_gil only `noexcept nogil` functions may run.

cdef extern from "Python.h":
    ctypedef struct PyThreadState:
        pass
    PyThreadState* PyEval_SaveThread() nogil
    void PyEval_RestoreThread(PyThreadState* state) nogil

cdef enum:
    # Items (events, fills, rows) from which a loop lets other threads run meanwhile:
    # about 20-100 us of work, several times what a hand-over costs.
    RELEASE_GIL_FROM = 1024


cdef inline PyThreadState* release_gil_if(bint worth_it) noexcept:
    """Release the GIL when `worth_it`; what restore_gil takes back (NULL: kept)."""
    return PyEval_SaveThread() if worth_it else NULL


cdef inline void restore_gil(PyThreadState* released) noexcept nogil:
    if released != NULL:
        PyEval_RestoreThread(released)
