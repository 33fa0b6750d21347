/*
 * rollbook.commitment._native: the Merkle tree's hashing loops in C.
 *
 * Why: a state root update hashes every dirty node of every touched path (about 78,000
 * SHA-256 calls for 10,000 touched leaves among 1,000,000 at depth 32). In Python each call
 * costs ~0.7 us, almost all of it the interpreter and the hashlib object around a ~0.1 us
 * compression; here the loop runs in C on OpenSSL's SHA-256 (the library Python's hashlib
 * uses, with the CPU's SHA extensions where it has them), with the GIL released.
 *
 * The layout is rollbook.commitment.merkle's (see its module docstring): level h is one
 * bytearray of 32-byte nodes back to back; node i of level h + 1 is
 * sha256(level_h[64 i .. 64 i + 63]); a leaf hash is sha256(0x00 || payload) and an empty
 * leaf is 32 zero bytes. merkle.py keeps the pure-Python loops as the reference; the tests
 * run both on the same batches and compare every level.
 *
 * Contract of every function: all inputs are checked before anything is written, so a
 * rejected call leaves the levels unchanged; indices must be ascending (callers sort them,
 * and it makes "the last index is in range" enough for the range check). Range checks divide
 * the buffer length rather than multiply the index, so no index can overflow them.
 *
 * check_leaves and update_leaves take a whole batch (a dict index -> payload) as
 * MerkleTree.set_leaves gets it, so that no per-leaf step runs in Python on the verifier's
 * replay thread: check_leaves only answers whether the reference checks would pass (the
 * caller runs those to raise with their messages when it does not), update_leaves sorts the
 * indices itself and rehashes every level in one call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

/* OpenSSL's low-level SHA-256 (libcrypto, the library Python's own _hashlib links). Not the
 * one-shot SHA256(): in OpenSSL 3 it goes through the EVP fetch machinery on every call, which
 * costs more than the hash itself for a 64-byte input. The declarations are OpenSSL's own
 * (stable since 0.9.8) where its header is missing, so that the shared library is enough. */
#if defined(__has_include) && __has_include(<openssl/sha.h>)
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
typedef SHA256_CTX rollbook_sha256_ctx;
#else
typedef struct {
    unsigned int h[8];
    unsigned int Nl, Nh;
    unsigned int data[16];
    unsigned int num, md_len;
} rollbook_sha256_ctx;
extern int SHA256_Init(rollbook_sha256_ctx *c);
extern int SHA256_Update(rollbook_sha256_ctx *c, const void *data, size_t len);
extern int SHA256_Final(unsigned char *md, rollbook_sha256_ctx *c);
#endif

#define HASH_BYTES 32
#define NODE_PREIMAGE_BYTES 64
#define LEVELS_MAX 65 /* merkle.DEPTH_MAX + 1: update_leaves keeps a pointer per level */

static void sha256_node(const unsigned char *children, unsigned char *out) {
    rollbook_sha256_ctx ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, children, NODE_PREIMAGE_BYTES);
    SHA256_Final(out, &ctx);
}

static void sha256_leaf(const unsigned char *payload, Py_ssize_t length, unsigned char *out) {
    static const unsigned char prefix = 0x00;
    rollbook_sha256_ctx ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &prefix, 1);
    SHA256_Update(&ctx, payload, (size_t)length);
    SHA256_Final(out, &ctx);
}

/* The ascending indices of `list` as a C array (caller frees), or NULL with an exception. */
static Py_ssize_t *ascending_indices(PyObject *list, Py_ssize_t *count) {
    Py_ssize_t n = PyList_GET_SIZE(list);
    Py_ssize_t *indices = PyMem_New(Py_ssize_t, n > 0 ? n : 1);
    if (indices == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (!PyLong_CheckExact(item)) {
            PyMem_Free(indices);
            PyErr_Format(PyExc_TypeError, "index %zd is not an int", i);
            return NULL;
        }
        Py_ssize_t value = PyLong_AsSsize_t(item);
        if (value == -1 && PyErr_Occurred()) {
            PyMem_Free(indices);
            return NULL;
        }
        if (value < 0 || (i > 0 && value <= indices[i - 1])) {
            PyMem_Free(indices);
            PyErr_Format(PyExc_ValueError,
                         "indices must be ascending and non-negative (at position %zd)", i);
            return NULL;
        }
        indices[i] = value;
    }
    *count = n;
    return indices;
}

PyDoc_STRVAR(write_leaves_doc,
"write_leaves(level, indices, payloads) -> None\n\n"
"Hash each payload (bytes: sha256(0x00 || payload); None: the empty leaf, 32 zero bytes)\n"
"into ``level`` at 32 * index. ``indices`` ascending, one payload per index.");

static PyObject *write_leaves(PyObject *module, PyObject *args) {
    Py_buffer level;
    PyObject *index_list, *payloads;
    if (!PyArg_ParseTuple(args, "w*O!O!", &level, &PyList_Type, &index_list,
                          &PyList_Type, &payloads)) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t count = 0;
    Py_ssize_t *indices = ascending_indices(index_list, &count);
    if (indices == NULL) {
        goto done;
    }
    if (PyList_GET_SIZE(payloads) != count) {
        PyErr_SetString(PyExc_ValueError, "one payload per index");
        goto done;
    }
    if (count > 0 && indices[count - 1] >= level.len / HASH_BYTES) {
        PyErr_SetString(PyExc_IndexError, "leaf index beyond the level's storage");
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *payload = PyList_GET_ITEM(payloads, i);
        if (payload != Py_None && !PyBytes_CheckExact(payload)) {
            PyErr_Format(PyExc_TypeError, "payload %zd must be bytes or None", i);
            goto done;
        }
    }
    /* The payloads are immutable bytes owned by the list, which the caller holds: their
     * buffers stay valid without the GIL. */
    unsigned char *base = (unsigned char *)level.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *payload = PyList_GET_ITEM(payloads, i);
        unsigned char *out = base + indices[i] * HASH_BYTES;
        if (payload == Py_None) {
            memset(out, 0, HASH_BYTES);
        } else {
            sha256_leaf((const unsigned char *)PyBytes_AS_STRING(payload),
                        PyBytes_GET_SIZE(payload), out);
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(indices);
    PyBuffer_Release(&level);
    return result;
}

PyDoc_STRVAR(rehash_parents_doc,
"rehash_parents(children, nodes, indices) -> list[int]\n\n"
"The distinct parents of the ascending child ``indices`` (ascending), each recomputed into\n"
"``nodes`` from its two children in ``children``.");

static PyObject *rehash_parents(PyObject *module, PyObject *args) {
    Py_buffer children, nodes;
    PyObject *index_list;
    if (!PyArg_ParseTuple(args, "y*w*O!", &children, &nodes, &PyList_Type, &index_list)) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t count = 0, parents = 0;
    Py_ssize_t *indices = ascending_indices(index_list, &count);
    if (indices == NULL) {
        goto done;
    }
    /* Parents of ascending children are non-decreasing: dropping repeats keeps them
     * ascending. Computed in place over the children's array. */
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t parent = indices[i] >> 1;
        if (parents == 0 || indices[parents - 1] != parent) {
            indices[parents++] = parent;
        }
    }
    if (parents > 0) {
        Py_ssize_t last = indices[parents - 1];
        if (last >= children.len / NODE_PREIMAGE_BYTES || last >= nodes.len / HASH_BYTES) {
            PyErr_SetString(PyExc_IndexError, "node index beyond the level's storage");
            goto done;
        }
    }
    const unsigned char *below = (const unsigned char *)children.buf;
    unsigned char *above = (unsigned char *)nodes.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < parents; i++) {
        sha256_node(below + indices[i] * NODE_PREIMAGE_BYTES, above + indices[i] * HASH_BYTES);
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(parents);
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < parents; i++) {
        PyObject *value = PyLong_FromSsize_t(indices[i]);
        if (value == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, value);
    }
done:
    PyMem_Free(indices);
    PyBuffer_Release(&children);
    PyBuffer_Release(&nodes);
    return result;
}

PyDoc_STRVAR(rehash_run_doc,
"rehash_run(children, nodes, start, stop) -> None\n\n"
"Recompute nodes ``start .. stop - 1`` into ``nodes`` from their children in ``children``.");

static PyObject *rehash_run(PyObject *module, PyObject *args) {
    Py_buffer children, nodes;
    Py_ssize_t start, stop;
    if (!PyArg_ParseTuple(args, "y*w*nn", &children, &nodes, &start, &stop)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (start < 0 || stop < start) {
        PyErr_SetString(PyExc_ValueError, "need 0 <= start <= stop");
        goto done;
    }
    if (stop > children.len / NODE_PREIMAGE_BYTES || stop > nodes.len / HASH_BYTES) {
        PyErr_SetString(PyExc_IndexError, "node index beyond the level's storage");
        goto done;
    }
    const unsigned char *below = (const unsigned char *)children.buf;
    unsigned char *above = (unsigned char *)nodes.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t index = start; index < stop; index++) {
        sha256_node(below + index * NODE_PREIMAGE_BYTES, above + index * HASH_BYTES);
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&children);
    PyBuffer_Release(&nodes);
    return result;
}

PyDoc_STRVAR(check_leaves_doc,
"check_leaves(updates, writable, payload_bytes_max) -> int\n\n"
"The highest index of ``updates`` (a dict: index -> payload bytes or None) when every index\n"
"is an int in [0, writable) and every payload None or bytes of at most ``payload_bytes_max``\n"
"bytes; -1 otherwise (and for an empty dict), so that the caller's reference checks name the\n"
"culprit with their own exception.");

static PyObject *check_leaves(PyObject *module, PyObject *args) {
    PyObject *updates;
    Py_ssize_t writable, payload_bytes_max;
    if (!PyArg_ParseTuple(args, "O!nn", &PyDict_Type, &updates, &writable,
                          &payload_bytes_max)) {
        return NULL;
    }
    Py_ssize_t highest = -1, position = 0;
    PyObject *key, *value;
    while (PyDict_Next(updates, &position, &key, &value)) {
        if (!PyLong_CheckExact(key)) {
            return PyLong_FromSsize_t(-1);
        }
        int overflow = 0;
        long long index = PyLong_AsLongLongAndOverflow(key, &overflow);
        if (overflow != 0 || index < 0 || index >= (long long)writable) {
            return PyLong_FromSsize_t(-1);  /* no error is set: overflow is reported, not raised */
        }
        if (value != Py_None && (!PyBytes_CheckExact(value)
                                 || PyBytes_GET_SIZE(value) > payload_bytes_max)) {
            return PyLong_FromSsize_t(-1);
        }
        if ((Py_ssize_t)index > highest) {
            highest = (Py_ssize_t)index;
        }
    }
    return PyLong_FromSsize_t(highest);
}

/* One written leaf: its index and its payload (NULL: the empty leaf). */
typedef struct {
    Py_ssize_t index;
    PyObject *payload;
} leaf_write;

static int compare_writes(const void *a, const void *b) {
    Py_ssize_t left = ((const leaf_write *)a)->index, right = ((const leaf_write *)b)->index;
    return (left > right) - (left < right);
}

PyDoc_STRVAR(update_leaves_doc,
"update_leaves(levels, updates) -> int\n\n"
"Write every payload of ``updates`` (a dict: index -> bytes or None) into ``levels[0]`` as\n"
"write_leaves does, then rehash every dirty ancestor level by level up to ``levels[-1]`` as\n"
"rehash_parents does; the number of payloads plus the number of nodes hashed. ``levels``\n"
"must already store every written leaf's ancestors (checked before anything is written).");

static PyObject *update_leaves(PyObject *module, PyObject *args) {
    PyObject *levels, *updates;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &levels, &PyDict_Type, &updates)) {
        return NULL;
    }
    Py_ssize_t depth = PyList_GET_SIZE(levels) - 1;
    Py_ssize_t count = PyDict_GET_SIZE(updates);
    if (depth < 1 || depth >= LEVELS_MAX) {
        PyErr_SetString(PyExc_ValueError, "need 2 to LEVELS_MAX levels");
        return NULL;
    }
    /* taken with the GIL held, used without it */
    unsigned char *buffers[LEVELS_MAX];
    Py_ssize_t stored[LEVELS_MAX];
    for (Py_ssize_t level = 0; level <= depth; level++) {
        PyObject *nodes = PyList_GET_ITEM(levels, level);
        if (!PyByteArray_CheckExact(nodes)) {
            PyErr_SetString(PyExc_TypeError, "every level must be a bytearray");
            return NULL;
        }
        buffers[level] = (unsigned char *)PyByteArray_AS_STRING(nodes);
        stored[level] = PyByteArray_GET_SIZE(nodes) / HASH_BYTES;
    }
    leaf_write *writes = PyMem_New(leaf_write, count > 0 ? count : 1);
    Py_ssize_t *dirty = PyMem_New(Py_ssize_t, count > 0 ? count : 1);
    PyObject *result = NULL;
    if (writes == NULL || dirty == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t position = 0, written = 0, payloads = 0;
    PyObject *key, *value;
    while (PyDict_Next(updates, &position, &key, &value)) {
        if (!PyLong_CheckExact(key) || (value != Py_None && !PyBytes_CheckExact(value))) {
            PyErr_SetString(PyExc_TypeError, "indices must be ints, payloads bytes or None");
            goto done;
        }
        Py_ssize_t index = PyLong_AsSsize_t(key);
        if (index == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (index < 0) {
            PyErr_SetString(PyExc_ValueError, "indices must be non-negative");
            goto done;
        }
        writes[written].index = index;
        writes[written].payload = value == Py_None ? NULL : value;
        payloads += value != Py_None;
        written++;
    }
    if (written == 0) {
        result = PyLong_FromSsize_t(0);
        goto done;
    }
    /* ascending: every pass walks memory forward, and parents come out ascending */
    qsort(writes, (size_t)written, sizeof(leaf_write), compare_writes);
    /* every level must hold the highest written leaf's ancestor, and its pair below it */
    Py_ssize_t highest = writes[written - 1].index;
    for (Py_ssize_t level = 0; level <= depth; level++) {
        Py_ssize_t ancestor = highest >> level;
        if (ancestor >= stored[level] || (level > 0 && (ancestor << 1 | 1) >= stored[level - 1])) {
            PyErr_SetString(PyExc_IndexError, "node index beyond the level's storage");
            goto done;
        }
    }
    Py_ssize_t hashes = 0;
    /* The payloads are immutable bytes owned by the dict, which the caller holds, and the
     * levels are not resized by anyone while the caller's single writer is here. */
    Py_BEGIN_ALLOW_THREADS
    unsigned char *leaves = buffers[0];
    for (Py_ssize_t i = 0; i < written; i++) {
        unsigned char *out = leaves + writes[i].index * HASH_BYTES;
        if (writes[i].payload == NULL) {
            memset(out, 0, HASH_BYTES);
        } else {
            sha256_leaf((const unsigned char *)PyBytes_AS_STRING(writes[i].payload),
                        PyBytes_GET_SIZE(writes[i].payload), out);
        }
        dirty[i] = writes[i].index;
    }
    Py_ssize_t nodes = written;
    for (Py_ssize_t level = 0; level < depth; level++) {
        const unsigned char *below = buffers[level];
        unsigned char *above = buffers[level + 1];
        Py_ssize_t parents = 0;
        for (Py_ssize_t i = 0; i < nodes; i++) {
            Py_ssize_t parent = dirty[i] >> 1;
            if (parents == 0 || dirty[parents - 1] != parent) {
                dirty[parents++] = parent;
            }
        }
        for (Py_ssize_t i = 0; i < parents; i++) {
            sha256_node(below + dirty[i] * NODE_PREIMAGE_BYTES, above + dirty[i] * HASH_BYTES);
        }
        hashes += parents;
        nodes = parents;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(payloads + hashes);
done:
    PyMem_Free(writes);
    PyMem_Free(dirty);
    return result;
}

static PyMethodDef native_methods[] = {
    {"write_leaves", write_leaves, METH_VARARGS, write_leaves_doc},
    {"rehash_parents", rehash_parents, METH_VARARGS, rehash_parents_doc},
    {"rehash_run", rehash_run, METH_VARARGS, rehash_run_doc},
    {"check_leaves", check_leaves, METH_VARARGS, check_leaves_doc},
    {"update_leaves", update_leaves, METH_VARARGS, update_leaves_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "rollbook.commitment._native",
    "The Merkle tree's hashing loops in C (see rollbook.commitment.merkle).", -1,
    native_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    return PyModule_Create(&native_module);
}
