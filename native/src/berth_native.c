/*
 * berth_native: the few system calls Node.js cannot make on its own.
 *
 *  - SOCK_SEQPACKET client sockets (conmon's attach socket). libuv refuses to
 *    wrap such an fd in a stream, so we drive it with a uv_poll_t and hand each
 *    packet to JavaScript whole: conmon's first byte names the stream (1 stdout,
 *    2 stderr), and packet boundaries matter.
 *  - mknod (overlay whiteouts are 0:0 character devices; layers carry devices).
 *  - extended attributes (overlay opaque dirs, file capabilities in layers).
 *  - mount/umount2 (overlay rootfs, without spawning mount(8) per container).
 *
 * Every function is synchronous except the socket, whose I/O runs on the loop.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#define CHECK(call)                                                          \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      napi_throw_error(env, NULL, "berth_native: N-API call failed: " #call); \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  char msg[4200];
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, path ? path : "", strerror(err));
  napi_value message, error, code, errnoValue;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  const char *name = "EUNKNOWN";
  switch (err) {
    case ENOENT: name = "ENOENT"; break;
    case EEXIST: name = "EEXIST"; break;
    case EPERM: name = "EPERM"; break;
    case EACCES: name = "EACCES"; break;
    case EINVAL: name = "EINVAL"; break;
    case ENOTSUP: name = "ENOTSUP"; break;
    case ENODATA: name = "ENODATA"; break;
    case EBUSY: name = "EBUSY"; break;
    case ECONNREFUSED: name = "ECONNREFUSED"; break;
    case ENOTDIR: name = "ENOTDIR"; break;
    case ENAMETOOLONG: name = "ENAMETOOLONG"; break;
  }
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, error, "code", code);
  napi_create_int32(env, err, &errnoValue);
  napi_set_named_property(env, error, "errno", errnoValue);
  napi_throw(env, error);
  return NULL;
}

/* Reads a string argument into a malloc'ed buffer; NULL (and a pending
 * exception) on failure. */
static char *get_string(napi_env env, napi_value value) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string");
    return NULL;
  }
  char *buf = malloc(len + 1);
  if (!buf) return NULL;
  napi_get_value_string_utf8(env, value, buf, len + 1, &len);
  return buf;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "not enough arguments");
    return -1;
  }
  return 0;
}

/* ---- filesystem calls ------------------------------------------------- */

/* mknod(path, mode, major, minor) */
static napi_value Mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv) < 0) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) return NULL;
  uint32_t mode, major, minor;
  CHECK(napi_get_value_uint32(env, argv[1], &mode));
  CHECK(napi_get_value_uint32(env, argv[2], &major));
  CHECK(napi_get_value_uint32(env, argv[3], &minor));
  int rc = mknod(path, mode, makedev(major, minor));
  int err = errno;
  napi_value result = NULL;
  if (rc < 0) throw_errno(env, err, "mknod", path);
  free(path);
  return result;
}

/* lsetxattr(path, name, value: Buffer) */
static napi_value Lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv) < 0) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) return NULL;
  char *name = get_string(env, argv[1]);
  if (!name) { free(path); return NULL; }
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    free(path); free(name);
    napi_throw_type_error(env, NULL, "value must be a Buffer");
    return NULL;
  }
  int rc = lsetxattr(path, name, data, len, 0);
  int err = errno;
  if (rc < 0) throw_errno(env, err, "lsetxattr", path);
  free(path); free(name);
  return NULL;
}

/* lgetxattr(path, name): Buffer | null when the attribute is absent */
static napi_value Lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) < 0) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) return NULL;
  char *name = get_string(env, argv[1]);
  if (!name) { free(path); return NULL; }
  char buf[65536];
  ssize_t n = lgetxattr(path, name, buf, sizeof buf);
  int err = errno;
  napi_value result = NULL;
  if (n < 0) {
    if (err == ENODATA || err == ENOTSUP) napi_get_null(env, &result);
    else throw_errno(env, err, "lgetxattr", path);
  } else {
    void *out;
    napi_create_buffer_copy(env, (size_t)n, buf, &out, &result);
  }
  free(path); free(name);
  return result;
}

/* llistxattr(path): string[] */
static napi_value Llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) < 0) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) return NULL;
  char buf[65536];
  ssize_t n = llistxattr(path, buf, sizeof buf);
  int err = errno;
  napi_value result = NULL;
  if (n < 0) {
    if (err == ENOTSUP) {
      napi_create_array(env, &result);
    } else {
      throw_errno(env, err, "llistxattr", path);
    }
  } else {
    napi_create_array(env, &result);
    uint32_t i = 0;
    for (ssize_t off = 0; off < n;) {
      size_t l = strlen(buf + off);
      napi_value s;
      napi_create_string_utf8(env, buf + off, l, &s);
      napi_set_element(env, result, i++, s);
      off += (ssize_t)l + 1;
    }
  }
  free(path);
  return result;
}

/* mount(source, target, fstype, flags, data) */
static napi_value Mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (get_args(env, info, 5, argv) < 0) return NULL;
  char *source = get_string(env, argv[0]);
  char *target = source ? get_string(env, argv[1]) : NULL;
  char *fstype = target ? get_string(env, argv[2]) : NULL;
  char *data = fstype ? get_string(env, argv[4]) : NULL;
  double flags = 0;
  if (data) napi_get_value_double(env, argv[3], &flags);
  if (data) {
    int rc = mount(source, target, fstype[0] ? fstype : NULL, (unsigned long)flags, data[0] ? data : NULL);
    int err = errno;
    if (rc < 0) throw_errno(env, err, "mount", target);
  }
  free(source); free(target); free(fstype); free(data);
  return NULL;
}

/* umount2(target, flags) */
static napi_value Umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) < 0) return NULL;
  char *target = get_string(env, argv[0]);
  if (!target) return NULL;
  int32_t flags;
  CHECK(napi_get_value_int32(env, argv[1], &flags));
  int rc = umount2(target, flags);
  int err = errno;
  if (rc < 0) throw_errno(env, err, "umount2", target);
  free(target);
  return NULL;
}

/* syncfs(path): flush the filesystem holding path (after unpacking a layer) */
static napi_value Syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) < 0) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "open", path);
  } else {
    if (syncfs(fd) < 0) throw_errno(env, errno, "syncfs", path);
    close(fd);
  }
  free(path);
  return NULL;
}

/* createNetns(path): a new network namespace, kept alive by a bind mount on
 * path (an existing empty file). Done in a short-lived thread: unshare
 * applies to the calling thread only, so the daemon's own namespace is
 * untouched and no helper process is spawned. */
struct netns_job {
  const char *path;
  int err;
  const char *what;
};

static void *netns_thread(void *arg) {
  struct netns_job *job = arg;
  if (unshare(CLONE_NEWNET) < 0) {
    job->err = errno;
    job->what = "unshare";
    return NULL;
  }
  char self[64];
  snprintf(self, sizeof self, "/proc/self/task/%ld/ns/net", (long)gettid());
  if (mount(self, job->path, "none", MS_BIND, NULL) < 0) {
    job->err = errno;
    job->what = "mount";
  }
  return NULL;
}

static napi_value CreateNetns(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) < 0) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) return NULL;
  struct netns_job job = {path, 0, NULL};
  pthread_t thread;
  int rc = pthread_create(&thread, NULL, netns_thread, &job);
  if (rc != 0) {
    throw_errno(env, rc, "pthread_create", path);
  } else {
    pthread_join(thread, NULL);
    if (job.err) throw_errno(env, job.err, job.what, path);
  }
  free(path);
  return NULL;
}

/* ---- SOCK_SEQPACKET client --------------------------------------------- */

typedef struct wbuf {
  struct wbuf *next;
  size_t len, off;
  char data[];
} wbuf_t;

typedef struct {
  uv_poll_t poll;
  int fd;
  int events;
  int closing;
  int read_eof;
  int want_shutdown;
  napi_env env;
  napi_ref callback; /* (type: number, data: Buffer | null) */
  napi_async_context async_context;
  wbuf_t *head, *tail;
} seqpacket_t;

#define PACKET_MAX 65536
/* conmon reads at most CONN_SOCK_BUF_SIZE - 1 bytes per packet: stay below. */
#define SEND_CHUNK 16384

/* type >= 0: a packet (first byte = type); -1: peer closed its side; -2: error */
static void emit(seqpacket_t *sp, int type, const char *data, size_t len) {
  napi_env env = sp->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, global, argv[2], result;
  if (napi_get_reference_value(env, sp->callback, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &global);
    napi_create_int32(env, type, &argv[0]);
    if (data) {
      void *out;
      napi_create_buffer_copy(env, len, data, &out, &argv[1]);
    } else {
      napi_get_null(env, &argv[1]);
    }
    napi_make_callback(env, sp->async_context, global, cb, 2, argv, &result);
  }
  napi_close_handle_scope(env, scope);
}

static void update_poll(seqpacket_t *sp);

static void flush_writes(seqpacket_t *sp) {
  while (sp->head) {
    wbuf_t *b = sp->head;
    ssize_t n = send(sp->fd, b->data + b->off, b->len - b->off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      /* The peer is gone: drop what is queued; reading reports the end. */
      while (sp->head) { wbuf_t *d = sp->head; sp->head = d->next; free(d); }
      sp->tail = NULL;
      return;
    }
    b->off += (size_t)n;
    if (b->off >= b->len) {
      sp->head = b->next;
      if (!sp->head) sp->tail = NULL;
      free(b);
    }
  }
  if (sp->want_shutdown == 1) {
    shutdown(sp->fd, SHUT_WR);
    sp->want_shutdown = 2;
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  seqpacket_t *sp = handle->data;
  if (sp->closing) return;
  if (status < 0) {
    emit(sp, -2, NULL, 0);
    return;
  }
  if (events & UV_WRITABLE) flush_writes(sp);
  if ((events & UV_READABLE) && !sp->read_eof) {
    char *buf = malloc(PACKET_MAX);
    if (!buf) return;
    for (int i = 0; i < 64 && !sp->closing; i++) {
      ssize_t n = recv(sp->fd, buf, PACKET_MAX, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          sp->read_eof = 1;
          emit(sp, -2, NULL, 0);
        }
        break;
      }
      if (n == 0) {
        sp->read_eof = 1;
        emit(sp, -1, NULL, 0);
        break;
      }
      emit(sp, (unsigned char)buf[0], buf + 1, (size_t)n - 1);
    }
    free(buf);
  }
  if (!sp->closing) update_poll(sp);
}

static void update_poll(seqpacket_t *sp) {
  int events = 0;
  if (!sp->read_eof) events |= UV_READABLE;
  if (sp->head || sp->want_shutdown == 1) events |= UV_WRITABLE;
  if (events == sp->events) return;
  sp->events = events;
  if (events) uv_poll_start(&sp->poll, events, on_poll);
  else uv_poll_stop(&sp->poll);
}

static void on_close(uv_handle_t *handle) {
  seqpacket_t *sp = handle->data;
  close(sp->fd);
  while (sp->head) { wbuf_t *d = sp->head; sp->head = d->next; free(d); }
  napi_delete_reference(sp->env, sp->callback);
  napi_async_destroy(sp->env, sp->async_context);
  free(sp);
}

static seqpacket_t *get_handle(napi_env env, napi_value value) {
  seqpacket_t *sp = NULL;
  if (napi_get_value_external(env, value, (void **)&sp) != napi_ok || !sp) {
    napi_throw_type_error(env, NULL, "not a seqpacket handle");
    return NULL;
  }
  if (sp->closing) {
    napi_throw_error(env, NULL, "seqpacket handle is closed");
    return NULL;
  }
  return sp;
}

/* seqpacketConnect(path, callback): handle */
static napi_value SeqpacketConnect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) < 0) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) return NULL;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    throw_errno(env, ENAMETOOLONG, "connect", path);
    free(path);
    return NULL;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket", path);
    free(path);
    return NULL;
  }
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "connect", path);
    free(path);
    return NULL;
  }
  free(path);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  seqpacket_t *sp = calloc(1, sizeof *sp);
  sp->fd = fd;
  sp->env = env;
  napi_create_reference(env, argv[1], 1, &sp->callback);
  napi_value resource_name;
  napi_create_string_utf8(env, "berth.seqpacket", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &sp->async_context);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &sp->poll, fd);
  sp->poll.data = sp;
  update_poll(sp);

  napi_value handle;
  CHECK(napi_create_external(env, sp, NULL, NULL, &handle));
  return handle;
}

/* seqpacketWrite(handle, data: Buffer): queues data, split into packets */
static napi_value SeqpacketWrite(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) < 0) return NULL;
  seqpacket_t *sp = get_handle(env, argv[0]);
  if (!sp) return NULL;
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "data must be a Buffer");
    return NULL;
  }
  if (sp->want_shutdown) return NULL;
  for (size_t off = 0; off < len; off += SEND_CHUNK) {
    size_t n = len - off < SEND_CHUNK ? len - off : SEND_CHUNK;
    wbuf_t *b = malloc(sizeof *b + n);
    b->next = NULL; b->len = n; b->off = 0;
    memcpy(b->data, (char *)data + off, n);
    if (sp->tail) sp->tail->next = b; else sp->head = b;
    sp->tail = b;
  }
  flush_writes(sp);
  update_poll(sp);
  return NULL;
}

/* seqpacketShutdown(handle): end of our writes, once the queue is sent */
static napi_value SeqpacketShutdown(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) < 0) return NULL;
  seqpacket_t *sp = get_handle(env, argv[0]);
  if (!sp) return NULL;
  if (!sp->want_shutdown) sp->want_shutdown = 1;
  flush_writes(sp);
  update_poll(sp);
  return NULL;
}

/* seqpacketClose(handle) */
static napi_value SeqpacketClose(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) < 0) return NULL;
  seqpacket_t *sp = NULL;
  if (napi_get_value_external(env, argv[0], (void **)&sp) != napi_ok || !sp || sp->closing) return NULL;
  sp->closing = 1;
  uv_poll_stop(&sp->poll);
  uv_close((uv_handle_t *)&sp->poll, on_close);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"mknod", NULL, Mknod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, Lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, Lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"llistxattr", NULL, Llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"syncfs", NULL, Syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
    {"createNetns", NULL, CreateNetns, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mount", NULL, Mount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"umount2", NULL, Umount2, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketConnect", NULL, SeqpacketConnect, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketWrite", NULL, SeqpacketWrite, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketShutdown", NULL, SeqpacketShutdown, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketClose", NULL, SeqpacketClose, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
