/* The closed path of an async function guarded by a CircuitBreaker, in C.

An `async def` wrapper costs a second coroutine per call (0.65-0.75x a bare
await on its own), so a guarded coroutine function is instead a LeanCall: while
the breaker's LeanCell holds a token (the breaker's lean state) it calls the
function and returns a thin awaitable over the coroutine. The awaitable forwards
every send and reports the end as the breaker's lean path does: a failure
through `_record_error`, a success only when the token changed meanwhile.
Without a token it returns `breaker.call_async(...)`. The token lives in a C
field, not in the breaker's __dict__: two attribute lookups per call cost as
much as all the rest.

The awaitable is a coroutine to asyncio (send, throw, close, __await__), and
forwards through `am_send`, so awaiting it raises no StopIteration on the way
(Python 3.10 and 3.11; 3.12 and later drive it through `tp_iternext`).
*/

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>         /* offsetof */

static PyObject *str_record;         /* "_record" */
static PyObject *str_record_error;   /* "_record_error" */
static PyObject *str_call_async;     /* "call_async" */
static PyObject *str_throw;          /* "throw" */
static PyObject *str_close;          /* "close" */

/* ------------------------------------------------------------------ the cell */

typedef struct {
    PyObject_HEAD
    PyObject *token;     /* the breaker's lean token; NULL for none */
} LeanCell;

static PyObject *
cell_get_token(LeanCell *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->token == NULL ? Py_None : self->token);
}

static int
cell_set_token(LeanCell *self, PyObject *token, void *Py_UNUSED(closure))
{
    Py_XSETREF(self->token, token == NULL || token == Py_None ? NULL : Py_NewRef(token));
    return 0;
}

static int
cell_traverse(LeanCell *self, visitproc visit, void *arg)
{
    Py_VISIT(self->token);
    return 0;
}

static int
cell_clear(LeanCell *self)
{
    Py_CLEAR(self->token);
    return 0;
}

static void
cell_dealloc(LeanCell *self)
{
    PyObject_GC_UnTrack(self);
    cell_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyGetSetDef cell_getset[] = {
    {"token", (getter)cell_get_token, (setter)cell_set_token,
     "The breaker's lean token, or None outside its lean state.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LeanCellType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "obelisk.breaker._lean.LeanCell",
    .tp_doc = "LeanCell()\n--\n\nA breaker's lean token where C code reads it without a lookup.",
    .tp_basicsize = sizeof(LeanCell),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_getset = cell_getset,
    .tp_traverse = (traverseproc)cell_traverse,
    .tp_clear = (inquiry)cell_clear,
    .tp_dealloc = (destructor)cell_dealloc,
};

/* ------------------------------------------------------------------ the awaitable */

typedef struct {
    PyObject_HEAD
    PyObject *coroutine;
    LeanCell *cell;
    PyObject *breaker;   /* NULL once the end is reported */
    PyObject *token;
} LeanAwait;

static PyTypeObject LeanAwaitType;

/* The outcome is reported once: the references go with it. */
static void
forget_breaker(LeanAwait *self)
{
    Py_CLEAR(self->breaker);
    Py_CLEAR(self->token);
}

/* A success: recorded only if the breaker left the lean state during the call. */
static int
report_success(LeanAwait *self)
{
    PyObject *breaker = self->breaker, *token = self->token, *done;
    if (breaker == NULL || self->cell->token == token) {
        forget_breaker(self);
        return 0;
    }
    done = PyObject_CallMethodObjArgs(breaker, str_record, token, Py_False, Py_None, Py_None,
                                      NULL);
    forget_breaker(self);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    return 0;
}

/* The raised exception goes to `breaker._record_error(token, error, None)` and stays
   raised; an exception from the report replaces it, with it as its context. */
static void
report_error(PyObject *breaker, PyObject *token)
{
    PyObject *type, *value, *traceback, *done;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL)
        PyException_SetTraceback(value, traceback);
    done = PyObject_CallMethodObjArgs(breaker, str_record_error, token, value, Py_None, NULL);
    if (done != NULL) {
        Py_DECREF(done);
        PyErr_Restore(type, value, traceback);
        return;
    }
    PyObject *new_type, *new_value, *new_traceback;
    PyErr_Fetch(&new_type, &new_value, &new_traceback);
    PyErr_NormalizeException(&new_type, &new_value, &new_traceback);
    PyException_SetContext(new_value, value);   /* steals value */
    Py_DECREF(type);
    Py_XDECREF(traceback);
    PyErr_Restore(new_type, new_value, new_traceback);
}

static void
report_raised(LeanAwait *self)
{
    if (self->breaker == NULL)
        return;
    PyObject *breaker = self->breaker, *token = self->token;
    self->breaker = self->token = NULL;
    report_error(breaker, token);
    Py_DECREF(breaker);
    Py_DECREF(token);
}

static PySendResult
lean_send(LeanAwait *self, PyObject *arg, PyObject **result)
{
    PySendResult status = PyIter_Send(self->coroutine, arg, result);
    if (status == PYGEN_NEXT)
        return status;
    if (status == PYGEN_RETURN) {
        if (report_success(self) == 0)
            return status;
        Py_CLEAR(*result);
        return PYGEN_ERROR;
    }
    report_raised(self);
    return PYGEN_ERROR;
}

/* StopIteration carrying `value` (consumed); None ends the iteration with nothing set. */
static PyObject *
stop_with(PyObject *value)
{
    if (value == Py_None) {
        Py_DECREF(value);
        return NULL;
    }
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
    Py_DECREF(value);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return NULL;
}

static PyObject *
lean_iternext(LeanAwait *self)
{
    PyObject *result;
    PySendResult status = lean_send(self, Py_None, &result);
    if (status == PYGEN_NEXT)
        return result;
    return status == PYGEN_RETURN ? stop_with(result) : NULL;
}

static PyObject *
lean_send_method(LeanAwait *self, PyObject *arg)
{
    PyObject *result;
    PySendResult status = lean_send(self, arg, &result);
    if (status == PYGEN_NEXT)
        return result;
    if (status == PYGEN_RETURN) {
        if (result == Py_None) {
            Py_DECREF(result);
            PyErr_SetNone(PyExc_StopIteration);
            return NULL;
        }
        return stop_with(result);
    }
    return NULL;
}

static PyObject *
lean_throw(LeanAwait *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *throw = PyObject_GetAttr(self->coroutine, str_throw);
    if (throw == NULL)
        return NULL;
    PyObject *result = PyObject_Vectorcall(throw, args, nargs, NULL);
    Py_DECREF(throw);
    if (result != NULL || self->breaker == NULL)
        return result;                      /* the coroutine went on to its next await */
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        report_raised(self);
        return NULL;
    }
    PyObject *type, *value, *traceback;     /* it returned: a success, still raised */
    PyErr_Fetch(&type, &value, &traceback);
    if (report_success(self) < 0) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        return NULL;
    }
    PyErr_Restore(type, value, traceback);
    return NULL;
}

static PyObject *
lean_close(LeanAwait *self, PyObject *Py_UNUSED(ignored))
{
    /* An abandoned call is not an outcome (the breaker ignores GeneratorExit). */
    forget_breaker(self);
    return PyObject_CallMethodNoArgs(self->coroutine, str_close);
}

static PyObject *
lean_await(LeanAwait *self)
{
    return Py_NewRef(self);
}

static int
lean_traverse(LeanAwait *self, visitproc visit, void *arg)
{
    Py_VISIT(self->coroutine);
    Py_VISIT(self->cell);
    Py_VISIT(self->breaker);
    Py_VISIT(self->token);
    return 0;
}

static int
lean_clear(LeanAwait *self)
{
    Py_CLEAR(self->coroutine);
    Py_CLEAR(self->cell);
    forget_breaker(self);
    return 0;
}

/* Spent awaitables kept for the next calls: one is made per guarded call, and the
   allocator (and the collections its count of new objects triggers) cost more than
   the awaitable's whole work. */
#define SPARE_AWAITABLES 16
static LeanAwait *spare_awaitables[SPARE_AWAITABLES];
static int spare_count;

static void
lean_dealloc(LeanAwait *self)
{
    PyObject_GC_UnTrack(self);
    lean_clear(self);
    if (spare_count < SPARE_AWAITABLES)
        spare_awaitables[spare_count++] = self;
    else
        PyObject_GC_Del(self);
}

static LeanAwait *
new_awaitable(void)
{
    if (spare_count == 0)
        return PyObject_GC_New(LeanAwait, &LeanAwaitType);
    LeanAwait *awaiting = spare_awaitables[--spare_count];
    return (LeanAwait *)PyObject_Init((PyObject *)awaiting, &LeanAwaitType);
}

static PyMethodDef lean_methods[] = {
    {"send", (PyCFunction)lean_send_method, METH_O, "Send a value into the coroutine."},
    {"throw", (PyCFunction)(void (*)(void))lean_throw, METH_FASTCALL,
     "Raise an exception in the coroutine."},
    {"close", (PyCFunction)lean_close, METH_NOARGS, "Close the coroutine."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods lean_async = {
    .am_await = (unaryfunc)lean_await,
    .am_send = (sendfunc)lean_send,
};

static PyTypeObject LeanAwaitType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "obelisk.breaker._lean.LeanAwait",
    .tp_doc = "One guarded call in flight: awaits its coroutine and reports the end.",
    .tp_basicsize = sizeof(LeanAwait),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_as_async = &lean_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)lean_iternext,
    .tp_methods = lean_methods,
    .tp_traverse = (traverseproc)lean_traverse,
    .tp_clear = (inquiry)lean_clear,
    .tp_dealloc = (destructor)lean_dealloc,
};

/* ------------------------------------------------------------------ the wrapper */

typedef struct {
    PyObject_HEAD
    PyObject *function;
    LeanCell *cell;
    PyObject *breaker;
    PyObject *dict;      /* what functools.update_wrapper copies, and __code__ & co. */
    PyObject *weakrefs;
    vectorcallfunc vectorcall;
} LeanCall;

/* breaker.call_async(function, *args, **kwargs): the full path, outside the lean state. */
static PyObject *
full_call(LeanCall *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t total = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    PyObject *small[8], **stack = small;
    if (total + 1 > 8) {
        stack = PyMem_Malloc((size_t)(total + 1) * sizeof(PyObject *));
        if (stack == NULL)
            return PyErr_NoMemory();
    }
    stack[0] = self->function;
    for (Py_ssize_t i = 0; i < total; i++)
        stack[i + 1] = args[i];
    PyObject *method = PyObject_GetAttr(self->breaker, str_call_async);
    PyObject *result = method == NULL ? NULL
                       : PyObject_Vectorcall(method, stack, (size_t)nargs + 1, kwnames);
    Py_XDECREF(method);
    if (stack != small)
        PyMem_Free(stack);
    return result;
}

static PyObject *
lean_call(LeanCall *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *token = self->cell->token;
    if (token == NULL)
        return full_call(self, args, nargsf, kwnames);
    Py_INCREF(token);
    /* Only a bad argument list raises here, before the function runs: not an outcome. */
    PyObject *coroutine = PyObject_Vectorcall(self->function, args, nargsf, kwnames);
    if (coroutine == NULL) {
        Py_DECREF(token);
        return NULL;
    }
    LeanAwait *awaiting = new_awaitable();
    if (awaiting == NULL) {
        Py_DECREF(coroutine);
        Py_DECREF(token);
        return NULL;
    }
    awaiting->coroutine = coroutine;
    awaiting->cell = (LeanCell *)Py_NewRef(self->cell);
    awaiting->breaker = Py_NewRef(self->breaker);
    awaiting->token = token;
    PyObject_GC_Track(awaiting);
    return (PyObject *)awaiting;
}

static PyObject *
call_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *function, *cell, *breaker;
    static char *names[] = {"function", "cell", "breaker", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!O:LeanCall", names, &function,
                                     &LeanCellType, &cell, &breaker))
        return NULL;
    if (!PyCallable_Check(function)) {
        PyErr_Format(PyExc_TypeError, "LeanCall needs a callable, got %R", function);
        return NULL;
    }
    LeanCall *self = (LeanCall *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->function = Py_NewRef(function);
    self->cell = (LeanCell *)Py_NewRef(cell);
    self->breaker = Py_NewRef(breaker);
    self->vectorcall = (vectorcallfunc)lean_call;
    return (PyObject *)self;
}

/* Bound to an instance like the function it wraps, so methods can be decorated. */
static PyObject *
call_get(PyObject *self, PyObject *instance, PyObject *Py_UNUSED(owner))
{
    if (instance == NULL || instance == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, instance);
}

static int
call_traverse(LeanCall *self, visitproc visit, void *arg)
{
    Py_VISIT(self->function);
    Py_VISIT(self->cell);
    Py_VISIT(self->breaker);
    Py_VISIT(self->dict);
    return 0;
}

static int
call_clear(LeanCall *self)
{
    Py_CLEAR(self->function);
    Py_CLEAR(self->cell);
    Py_CLEAR(self->breaker);
    Py_CLEAR(self->dict);
    return 0;
}

static void
call_dealloc(LeanCall *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    call_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
call_repr(LeanCall *self)
{
    return PyUnicode_FromFormat("<breaker-guarded %R>", self->function);
}

/* Pickled by reference, as the function it replaces was: its module's global of its name. */
static PyObject *
call_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyObject_GetAttrString(self, "__qualname__");
}

static PyMethodDef call_methods[] = {
    {"__reduce__", (PyCFunction)call_reduce, METH_NOARGS, "Pickle by qualified name."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef call_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LeanCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "obelisk.breaker._lean.LeanCall",
    .tp_doc = "LeanCall(function, cell, breaker)\n--\n\n"
              "An async function guarded by a breaker: calling it returns an awaitable.",
    .tp_basicsize = sizeof(LeanCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = call_new,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(LeanCall, vectorcall),
    .tp_dictoffset = offsetof(LeanCall, dict),
    .tp_weaklistoffset = offsetof(LeanCall, weakrefs),
    .tp_descr_get = call_get,
    .tp_methods = call_methods,
    .tp_getset = call_getset,
    .tp_repr = (reprfunc)call_repr,
    .tp_traverse = (traverseproc)call_traverse,
    .tp_clear = (inquiry)call_clear,
    .tp_dealloc = (destructor)call_dealloc,
};

/* ------------------------------------------------------------------ the module */

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

static struct PyModuleDef lean_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "obelisk.breaker._lean",
    .m_doc = "The closed path of a breaker-guarded async function, in C.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__lean(void)
{
    if (intern(&str_record, "_record") < 0
            || intern(&str_record_error, "_record_error") < 0
            || intern(&str_call_async, "call_async") < 0 || intern(&str_throw, "throw") < 0
            || intern(&str_close, "close") < 0)
        return NULL;
    if (PyType_Ready(&LeanCellType) < 0 || PyType_Ready(&LeanAwaitType) < 0
            || PyType_Ready(&LeanCallType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&lean_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "LeanCell", (PyObject *)&LeanCellType) < 0
            || PyModule_AddObjectRef(module, "LeanCall", (PyObject *)&LeanCallType) < 0
            || PyModule_AddObjectRef(module, "LeanAwait", (PyObject *)&LeanAwaitType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
