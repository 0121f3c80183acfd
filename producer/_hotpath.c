/* The log_metric hot path in C: what a training loop calls millions of times.
 *
 * A Python method costs a frame; the legacy call `exp.log_metric(name, value)` went through two of them
 * (Experiment, then its stream) and appended three doubles through three method calls, about six times the
 * cost of the least a Python method can do. Here the same path is one C call: find the log in the stream's
 * dict, take a float or int that is finite, read the wall clock, append x, y and ts to the log's buffer.
 * Everything else (a new log, keyword arguments, NaN, a non-increasing x, a stopped experiment, a clock a
 * test patched) goes to the Python methods named below, which hold the whole behaviour; this file only
 * decides that a call is the plain case. producer/_hotpath_py.py is the same in Python: it is used where
 * this file was not compiled, and it is the reference the types are checked against.
 *
 * The types are bases of Python classes (Channel, ExperimentStream, Experiment, Project) so that their
 * fields are C struct members the hot path reads directly, while Python code keeps reading and assigning
 * them as attributes. The GIL makes each call atomic against the flusher thread that drains the buffers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#include <structmember.h>
#include <time.h>

static PyTypeObject DoublesType;
static PyTypeObject ChannelCoreType;
static PyTypeObject StreamCoreType;
static PyTypeObject ExperimentCoreType;
static PyTypeObject ProjectCoreType;
static PyTypeObject ModuleLoggerType;

static PyObject *str_log_metric_slow;    /* ExperimentStream._log_metric_slow: every case but the plain one */
static PyObject *str_log_metric_general; /* Experiment._log_metric_general: no open stream yet */
static PyObject *str_project;            /* the `project` global of the expstream module */

/* --- Doubles: a growable buffer of doubles ------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    double *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    Py_ssize_t exports; /* buffer views handed out: the memory may not move while any is alive */
} Doubles;

/* Whether the buffer may change: not while a view of it exists (as array.array), so a view never sees its
 * doubles move or its length change under it. Only taken buffers are viewed (the flusher's frombuffer). */
static int
doubles_unexported(Doubles *self)
{
    if (self->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "cannot change a Doubles buffer while a view of it exists");
        return 0;
    }
    return 1;
}

static int
doubles_grow(Doubles *self, Py_ssize_t extra)
{
    if (!doubles_unexported(self)) {
        return -1;
    }
    Py_ssize_t need = self->len + extra;
    if (need <= self->cap) {
        return 0;
    }
    Py_ssize_t cap = self->cap < 48 ? 48 : self->cap;
    while (cap < need) {
        if (cap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(double)) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    double *data = PyMem_Realloc(self->data, (size_t)cap * sizeof(double));
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->data = data;
    self->cap = cap;
    return 0;
}

static PyObject *
doubles_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Doubles() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0);
}

static void
doubles_dealloc(Doubles *self)
{
    PyMem_Free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
doubles_length(Doubles *self)
{
    return self->len;
}

static PyObject *
doubles_item(Doubles *self, Py_ssize_t i)
{
    if (i < 0 || i >= self->len) {
        PyErr_SetString(PyExc_IndexError, "Doubles index out of range");
        return NULL;
    }
    return PyFloat_FromDouble(self->data[i]);
}

static PyObject *
doubles_append(Doubles *self, PyObject *value)
{
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (doubles_grow(self, 1) < 0) {
        return NULL;
    }
    self->data[self->len++] = v;
    Py_RETURN_NONE;
}

static PyObject *
doubles_take(Doubles *self, PyObject *arg)
{
    Py_ssize_t width = PyLong_AsSsize_t(arg);
    if (width == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (width < 1) {
        PyErr_SetString(PyExc_ValueError, "width must be at least 1");
        return NULL;
    }
    if (!doubles_unexported(self)) {
        return NULL;
    }
    Py_ssize_t n = self->len - self->len % width; /* whole points only: a point half-appended by Python stays */
    Py_ssize_t rest = self->len - n;
    Doubles *out = (Doubles *)DoublesType.tp_alloc(&DoublesType, 0);
    if (out == NULL) {
        return NULL;
    }
    if (n == 0) {
        return (PyObject *)out;
    }
    /* hand the memory over and keep only the remainder: no copy of the points */
    double *keep = PyMem_Malloc(48 * sizeof(double));
    if (keep == NULL) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    memcpy(keep, self->data + n, (size_t)rest * sizeof(double));
    out->data = self->data;
    out->len = n;
    out->cap = self->cap;
    self->data = keep;
    self->cap = 48;
    self->len = rest;
    return (PyObject *)out;
}

static PyObject *
doubles_tolist(Doubles *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(self->len);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->len; i++) {
        PyObject *item = PyFloat_FromDouble(self->data[i]);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *
doubles_clear(Doubles *self, PyObject *Py_UNUSED(ignored))
{
    if (!doubles_unexported(self)) {
        return NULL;
    }
    self->len = 0;
    Py_RETURN_NONE;
}

static int
doubles_getbuffer(Doubles *self, Py_buffer *view, int flags)
{
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->data, self->len * (Py_ssize_t)sizeof(double), 1, flags) <
        0) {
        return -1;
    }
    view->itemsize = sizeof(double);
    if ((flags & PyBUF_FORMAT) == PyBUF_FORMAT) {
        view->format = "d";
    }
    if ((flags & PyBUF_ND) == PyBUF_ND) {
        view->ndim = 1;
        view->shape = &self->len;
    }
    if ((flags & PyBUF_STRIDES) == PyBUF_STRIDES) {
        view->strides = &view->itemsize;
    }
    self->exports++;
    return 0;
}

static void
doubles_releasebuffer(Doubles *self, Py_buffer *Py_UNUSED(view))
{
    self->exports--;
}

static PyMethodDef doubles_methods[] = {
    {"append", (PyCFunction)doubles_append, METH_O, "append($self, value, /)\n--\n\nAppend one double."},
    {"take", (PyCFunction)doubles_take, METH_O,
     "take($self, width, /)\n--\n\nRemove and return the whole points of `width` doubles appended so far."},
    {"tolist", (PyCFunction)doubles_tolist, METH_NOARGS, "tolist($self, /)\n--\n\nThe doubles as a list."},
    {"clear", (PyCFunction)doubles_clear, METH_NOARGS, "clear($self, /)\n--\n\nDrop every double."},
    {NULL},
};

static PySequenceMethods doubles_as_sequence = {
    .sq_length = (lenfunc)doubles_length,
    .sq_item = (ssizeargfunc)doubles_item,
};

static PyBufferProcs doubles_as_buffer = {
    .bf_getbuffer = (getbufferproc)doubles_getbuffer,
    .bf_releasebuffer = (releasebufferproc)doubles_releasebuffer,
};

static PyTypeObject DoublesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "expstream.producer._hotpath.Doubles",
    .tp_doc = "Doubles()\n--\n\nA numeric log's unsent points, flat: x, y, ts, x, y, ts, ... (24 bytes a point).",
    .tp_basicsize = sizeof(Doubles),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = doubles_new,
    .tp_dealloc = (destructor)doubles_dealloc,
    .tp_as_sequence = &doubles_as_sequence,
    .tp_as_buffer = &doubles_as_buffer,
    .tp_methods = doubles_methods,
};

/* --- ChannelCore: the fields of a log the hot path reads and writes --------------------------------- */

typedef struct {
    PyObject_HEAD
    double last_x; /* an explicit x must be greater than this */
    double next_x; /* the automatic x of the next point */
    PyObject *points;
} ChannelCore;

static PyObject *
channel_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    ChannelCore *self = (ChannelCore *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->last_x = -INFINITY;
        self->next_x = 0.0;
    }
    return (PyObject *)self;
}

static int
channel_traverse(ChannelCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->points);
    return 0;
}

static int
channel_clear(ChannelCore *self)
{
    Py_CLEAR(self->points);
    return 0;
}

static void
channel_dealloc(ChannelCore *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    channel_clear(self);
    type->tp_free((PyObject *)self); /* a Python subclass's dealloc releases its type after this */
}

static PyMemberDef channel_members[] = {
    {"last_x", T_DOUBLE, offsetof(ChannelCore, last_x), 0, NULL},
    {"next_x", T_DOUBLE, offsetof(ChannelCore, next_x), 0, NULL},
    {"points", T_OBJECT_EX, offsetof(ChannelCore, points), 0, NULL},
    {NULL},
};

static PyTypeObject ChannelCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "expstream.producer._hotpath.ChannelCore",
    .tp_doc = "The fields of one log that log_metric reads and writes.",
    .tp_basicsize = sizeof(ChannelCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = channel_new,
    .tp_traverse = (traverseproc)channel_traverse,
    .tp_clear = (inquiry)channel_clear,
    .tp_dealloc = (destructor)channel_dealloc,
    .tp_members = channel_members,
};

/* --- StreamCore: one experiment's numeric logs and the plain log_metric ------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *numeric;      /* dict: log name -> ChannelCore */
    PyObject *backpressure; /* called when a log's buffer holds numeric_limit doubles */
    PyObject *clock;        /* None: the wall clock read here; else a callable (a test's shifted time) */
    Py_ssize_t numeric_limit;
} StreamCore;

static PyObject *
stream_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    StreamCore *self = (StreamCore *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->numeric_limit = PY_SSIZE_T_MAX;
    }
    return (PyObject *)self;
}

static int
stream_traverse(StreamCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->numeric);
    Py_VISIT(self->backpressure);
    Py_VISIT(self->clock);
    return 0;
}

static int
stream_clear(StreamCore *self)
{
    Py_CLEAR(self->numeric);
    Py_CLEAR(self->backpressure);
    Py_CLEAR(self->clock);
    return 0;
}

static void
stream_dealloc(StreamCore *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    stream_clear(self);
    type->tp_free((PyObject *)self); /* a Python subclass's dealloc releases its type after this */
}

/* A value the plain path takes: an exact float or int, finite. Anything else (a bool, a numpy scalar, a
 * string, NaN, an int beyond a double) is the Python path's to accept, convert, warn about or refuse. */
static int
plain_number(PyObject *v, double *out)
{
    double d;
    if (PyFloat_CheckExact(v)) {
        d = PyFloat_AS_DOUBLE(v);
    }
    else if (PyLong_CheckExact(v)) {
        d = PyLong_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
    }
    else {
        return 0;
    }
    if (!isfinite(d)) {
        return 0;
    }
    *out = d;
    return 1;
}

/* The wall clock as time.time() computes it: nanoseconds since the epoch, divided. */
static int
wall_clock(StreamCore *self, double *out)
{
    if (self->clock != NULL && self->clock != Py_None) {
        PyObject *t = PyObject_CallNoArgs(self->clock);
        if (t == NULL) {
            return -1;
        }
        double d = PyFloat_AsDouble(t);
        Py_DECREF(t);
        if (d == -1.0 && PyErr_Occurred()) {
            return -1;
        }
        *out = d;
        return 0;
    }
    struct timespec now;
    if (timespec_get(&now, TIME_UTC) != TIME_UTC) {
        PyErr_SetString(PyExc_OSError, "the wall clock cannot be read");
        return -1;
    }
    *out = (double)((long long)now.tv_sec * 1000000000LL + now.tv_nsec) / 1e9;
    return 0;
}

static PyObject *
call_method(PyObject *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *method = PyObject_GetAttr(self, name);
    if (method == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_Vectorcall(method, args, nargs, kwnames);
    Py_DECREF(method);
    return result;
}

/* log_metric(log_name, value) and log_metric(log_name, x, value) of a log that exists, in C. */
static PyObject *
stream_log_metric_impl(StreamCore *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames != NULL || (nargs != 2 && nargs != 3) || self->numeric == NULL || !PyDict_CheckExact(self->numeric)) {
        goto slow;
    }
    PyObject *found = PyDict_GetItemWithError(self->numeric, args[0]); /* borrowed */
    if (found == NULL) {
        if (PyErr_Occurred()) {
            return NULL; /* an unhashable name */
        }
        goto slow; /* a new log: validated and created in Python */
    }
    if (!PyObject_TypeCheck(found, &ChannelCoreType)) {
        goto slow;
    }
    ChannelCore *ch = (ChannelCore *)found;
    if (ch->points == NULL || !Py_IS_TYPE(ch->points, &DoublesType)) {
        goto slow;
    }
    double x, y, ts;
    if (nargs == 2) {
        if (!plain_number(args[1], &y)) {
            goto slow;
        }
        x = ch->next_x;
    }
    else {
        if (!plain_number(args[1], &x) || !plain_number(args[2], &y) || x <= ch->last_x) {
            goto slow; /* log_metric(name, value, None), NaN, or an x that does not increase: Python warns */
        }
    }
    Py_INCREF(ch); /* a patched clock is Python code, which could drop the log */
    if (wall_clock(self, &ts) < 0) {
        Py_DECREF(ch);
        return NULL;
    }
    Doubles *points = (Doubles *)ch->points;
    if (points == NULL || !Py_IS_TYPE(points, &DoublesType) || doubles_grow(points, 3) < 0) {
        Py_DECREF(ch);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "the log's buffer changed during log_metric");
        }
        return NULL;
    }
    ch->last_x = x;
    ch->next_x = x + 1.0;
    points->data[points->len] = x;
    points->data[points->len + 1] = y;
    points->data[points->len + 2] = ts;
    points->len += 3;
    Py_ssize_t held = points->len;
    Py_DECREF(ch);
    if (held >= self->numeric_limit && self->backpressure != NULL) {
        PyObject *r = PyObject_CallNoArgs(self->backpressure);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
slow:
    return call_method((PyObject *)self, str_log_metric_slow, args, nargs, kwnames);
}

static PyObject *
stream_log_metric(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return stream_log_metric_impl((StreamCore *)self, args, nargs, kwnames);
}

static PyMemberDef stream_members[] = {
    {"numeric", T_OBJECT_EX, offsetof(StreamCore, numeric), 0, NULL},
    {"_backpressure", T_OBJECT_EX, offsetof(StreamCore, backpressure), 0, NULL},
    {"_clock", T_OBJECT, offsetof(StreamCore, clock), 0, NULL},
    {"_numeric_limit", T_PYSSIZET, offsetof(StreamCore, numeric_limit), 0, NULL},
    {NULL},
};

static PyMethodDef stream_methods[] = {
    {"log_metric", (PyCFunction)(void (*)(void))stream_log_metric, METH_FASTCALL | METH_KEYWORDS,
     "log_metric($self, log_name, x, y=None, timestamp=None)\n--\n\nAppend a numeric point."},
    {NULL},
};

static PyTypeObject StreamCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "expstream.producer._hotpath.StreamCore",
    .tp_doc = "The numeric logs of one experiment's stream, and log_metric.",
    .tp_basicsize = sizeof(StreamCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = stream_new,
    .tp_traverse = (traverseproc)stream_traverse,
    .tp_clear = (inquiry)stream_clear,
    .tp_dealloc = (destructor)stream_dealloc,
    .tp_members = stream_members,
    .tp_methods = stream_methods,
};

/* --- ExperimentCore: exp.log_metric without a Python frame ------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *stream; /* the open StreamCore, or NULL/None before the first write and after stop */
} ExperimentCore;

static int
experiment_traverse(ExperimentCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->stream);
    return 0;
}

static int
experiment_clear(ExperimentCore *self)
{
    Py_CLEAR(self->stream);
    return 0;
}

static void
experiment_dealloc(ExperimentCore *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    experiment_clear(self);
    type->tp_free((PyObject *)self); /* a Python subclass's dealloc releases its type after this */
}

static PyObject *
log_to_stream(PyObject *stream, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_INCREF(stream); /* Python code on the way (backpressure, the slow path) may stop the experiment */
    PyObject *result = stream_log_metric_impl((StreamCore *)stream, args, nargs, kwnames);
    Py_DECREF(stream);
    return result;
}

static PyObject *
experiment_log_metric(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *stream = ((ExperimentCore *)self)->stream;
    if (stream != NULL && PyObject_TypeCheck(stream, &StreamCoreType)) {
        return log_to_stream(stream, args, nargs, kwnames);
    }
    return call_method(self, str_log_metric_general, args, nargs, kwnames);
}

static PyMemberDef experiment_members[] = {
    {"_stream", T_OBJECT, offsetof(ExperimentCore, stream), 0, NULL},
    {NULL},
};

static PyMethodDef experiment_methods[] = {
    {"log_metric", (PyCFunction)(void (*)(void))experiment_log_metric, METH_FASTCALL | METH_KEYWORDS,
     "log_metric($self, log_name, x, y=None, timestamp=None)\n--\n\n"
     "Append a numeric point: ``log_metric('loss', 0.5)`` or ``log_metric('loss', step, 0.5)``."},
    {NULL},
};

static PyTypeObject ExperimentCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "expstream.producer._hotpath.ExperimentCore",
    .tp_doc = "An experiment's open stream, and log_metric straight to it.",
    .tp_basicsize = sizeof(ExperimentCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)experiment_traverse,
    .tp_clear = (inquiry)experiment_clear,
    .tp_dealloc = (destructor)experiment_dealloc,
    .tp_members = experiment_members,
    .tp_methods = experiment_methods,
};

/* --- ProjectCore: the stack of a project's running experiments --------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *stack; /* list of ExperimentCore; the last is the current experiment */
} ProjectCore;

static int
project_traverse(ProjectCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->stack);
    return 0;
}

static int
project_clear(ProjectCore *self)
{
    Py_CLEAR(self->stack);
    return 0;
}

static void
project_dealloc(ProjectCore *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    project_clear(self);
    type->tp_free((PyObject *)self); /* a Python subclass's dealloc releases its type after this */
}

static PyMemberDef project_members[] = {
    {"_stack", T_OBJECT_EX, offsetof(ProjectCore, stack), 0, NULL},
    {NULL},
};

static PyTypeObject ProjectCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "expstream.producer._hotpath.ProjectCore",
    .tp_doc = "A project's stack of running experiments, read by the module-level log_metric.",
    .tp_basicsize = sizeof(ProjectCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)project_traverse,
    .tp_clear = (inquiry)project_clear,
    .tp_dealloc = (destructor)project_dealloc,
    .tp_members = project_members,
};

/* --- the module-level log_metric of legacy scripts ----------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *namespace; /* the expstream module's globals: its `project` changes with every init() */
    PyObject *fallback;  /* the Python function for every other case (no project, no experiment, ...) */
} ModuleLogger;

static int
logger_traverse(ModuleLogger *self, visitproc visit, void *arg)
{
    Py_VISIT(self->namespace);
    Py_VISIT(self->fallback);
    return 0;
}

static int
logger_clear(ModuleLogger *self)
{
    Py_CLEAR(self->namespace);
    Py_CLEAR(self->fallback);
    return 0;
}

static void
logger_dealloc(ModuleLogger *self)
{
    PyObject_GC_UnTrack(self);
    logger_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ModuleLoggerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "expstream.producer._hotpath.ModuleLogger",
    .tp_basicsize = sizeof(ModuleLogger),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)logger_traverse,
    .tp_clear = (inquiry)logger_clear,
    .tp_dealloc = (destructor)logger_dealloc,
};

static PyObject *
module_log_metric(PyObject *logger, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ModuleLogger *self = (ModuleLogger *)logger;
    PyObject *project = PyDict_GetItemWithError(self->namespace, str_project); /* borrowed */
    if (project == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (project != NULL && PyObject_TypeCheck(project, &ProjectCoreType)) {
        PyObject *stack = ((ProjectCore *)project)->stack;
        if (stack != NULL && PyList_CheckExact(stack) && PyList_GET_SIZE(stack) > 0) {
            PyObject *current = PyList_GET_ITEM(stack, PyList_GET_SIZE(stack) - 1);
            if (PyObject_TypeCheck(current, &ExperimentCoreType)) {
                PyObject *stream = ((ExperimentCore *)current)->stream;
                if (stream != NULL && PyObject_TypeCheck(stream, &StreamCoreType)) {
                    return log_to_stream(stream, args, nargs, kwnames);
                }
            }
        }
    }
    return PyObject_Vectorcall(self->fallback, args, nargs, kwnames);
}

static PyMethodDef module_log_metric_def = {
    "log_metric", (PyCFunction)(void (*)(void))module_log_metric, METH_FASTCALL | METH_KEYWORDS,
    "log_metric(log_name, x, y=None, timestamp=None)\n--\n\n"
    "``exp.log_metric`` of the current experiment: the last one created and not stopped.",
};

static PyObject *
make_module_log_metric(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *namespace, *fallback;
    if (!PyArg_ParseTuple(args, "O!O:module_log_metric", &PyDict_Type, &namespace, &fallback)) {
        return NULL;
    }
    ModuleLogger *logger = PyObject_GC_New(ModuleLogger, &ModuleLoggerType);
    if (logger == NULL) {
        return NULL;
    }
    Py_INCREF(namespace);
    Py_INCREF(fallback);
    logger->namespace = namespace;
    logger->fallback = fallback;
    PyObject_GC_Track(logger);
    PyObject *module_name = PyDict_GetItemString(namespace, "__name__"); /* borrowed; may be NULL */
    PyObject *function = PyCFunction_NewEx(&module_log_metric_def, (PyObject *)logger, module_name);
    Py_DECREF(logger);
    return function;
}

static PyMethodDef hotpath_functions[] = {
    {"module_log_metric", make_module_log_metric, METH_VARARGS,
     "module_log_metric(namespace, fallback, /)\n--\n\n"
     "The module-level log_metric: the current experiment of ``namespace['project']``, else ``fallback``."},
    {NULL},
};

static struct PyModuleDef hotpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "expstream.producer._hotpath",
    .m_doc = "The log_metric hot path in C (producer/_hotpath_py.py is the same in Python).",
    .m_size = -1,
    .m_methods = hotpath_functions,
};

PyMODINIT_FUNC
PyInit__hotpath(void)
{
    PyTypeObject *types[] = {&DoublesType, &ChannelCoreType, &StreamCoreType, &ExperimentCoreType, &ProjectCoreType,
                             &ModuleLoggerType};
    const char *names[] = {"Doubles", "ChannelCore", "StreamCore", "ExperimentCore", "ProjectCore", NULL};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0) {
            return NULL;
        }
    }
    str_log_metric_slow = PyUnicode_InternFromString("_log_metric_slow");
    str_log_metric_general = PyUnicode_InternFromString("_log_metric_general");
    str_project = PyUnicode_InternFromString("project");
    if (str_log_metric_slow == NULL || str_log_metric_general == NULL || str_project == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&hotpath_module);
    if (module == NULL) {
        return NULL;
    }
    for (size_t i = 0; names[i] != NULL; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(module, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            Py_DECREF(module);
            return NULL;
        }
    }
    return module;
}
