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
 *  - pipes and posix_spawn for the exec helper (berth-nsexec): libuv forks,
 *    which costs milliseconds per spawn in a daemon of some 100 MB; posix_spawn
 *    (vfork) does not. The exit is watched with a pidfd on the loop.
 *  - a sealed in-memory copy of the helper, so a container process can never
 *    reach the host's binary through /proc/<pid>/exe (runc's memfd defence).
 *  - the ext4 "top of directory hierarchy" flag (FS_TOPDIR_FL), see SetTopdir.
 *  - gzip decompression with ISA-L, about twice zlib's speed (gunzip.c).
 *  - seccomp: the OCI profile compiled to BPF with libseccomp exactly as runc
 *    1.1 does it (rules, then the -ENOSYS stub runc prepends), once per
 *    profile instead of once per exec.
 *
 *  - crash-safe state files written in one thread-pool job (WriteFileAtomic).
 *  - malloc_trim, to hand back what threads freed once the daemon is idle.
 *
 * Every function is synchronous except the socket and the exit watch, whose
 * I/O runs on the loop, and syncfs, writeFileAtomic, mallocTrim and gunzip,
 * which run on the thread pool.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <malloc.h>
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
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <seccomp.h>
#include <linux/filter.h>
#include <unistd.h>

#include "gunzip.h"

#define CHECK(call)                                                          \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      napi_throw_error(env, NULL, "berth_native: N-API call failed: " #call); \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

/* An Error like Node's own for a failed system call (message, code, errno). */
static napi_value errno_error(napi_env env, int err, const char *syscall, const char *path) {
  char msg[4200];
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, path ? path : "", strerror(err));
  napi_value message, error, code, errnoValue;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  /* libuv names every errno as Node does (uv errors are -errno on Unix) */
  const char *name = uv_err_name(-err);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, error, "code", code);
  napi_create_int32(env, err, &errnoValue);
  napi_set_named_property(env, error, "errno", errnoValue);
  napi_value syscallValue;
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscallValue) == napi_ok)
    napi_set_named_property(env, error, "syscall", syscallValue);
  napi_value pathValue;
  if (path && napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &pathValue) == napi_ok)
    napi_set_named_property(env, error, "path", pathValue);
  return error;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  napi_throw(env, errno_error(env, err, syscall, path));
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
  if (!buf) {
    throw_errno(env, ENOMEM, "malloc", NULL);
    return NULL;
  }
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

/* setTopdir(path): sets FS_TOPDIR_FL on a directory; false where the
 * filesystem has no such flag. ext4's Orlov allocator then places each new
 * subdirectory in a block group of its own choosing (free inodes and blocks
 * above average) instead of next to its parent. That matters after a big
 * delete on ext4 without a journal: an inode allocation skips every inode of
 * its group freed in the last minutes (recently_deleted()), one buffer-cache
 * lookup each, so unpacking a layer where the previous one was just removed
 * costs ~0.5 ms per file instead of ~40 us. */
static napi_value SetTopdir(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) < 0) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) return NULL;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    throw_errno(env, errno, "open", path);
    free(path);
    return NULL;
  }
  int flags = 0, ok = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
    ok = (flags & FS_TOPDIR_FL) != 0;
    if (!ok) {
      flags |= FS_TOPDIR_FL;
      ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
  }
  close(fd);
  free(path);
  napi_value result;
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
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

/* Ends a thread-pool job's promise: resolved with undefined, or rejected with
 * the errno the job recorded. */
static void settle(napi_env env, napi_deferred deferred, int err, const char *what, const char *path) {
  if (err) {
    napi_reject_deferred(env, deferred, errno_error(env, err, what, path));
    return;
  }
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_resolve_deferred(env, deferred, undefined);
}

/* Queues a thread-pool job whose completion settles the returned promise.
 * NULL, with an exception pending, when it cannot be queued: the caller frees
 * its state (work and deferred are in it). */
static napi_value queue_job(napi_env env, const char *resource, napi_async_execute_callback execute,
                            napi_async_complete_callback complete, void *data, napi_deferred *deferred,
                            napi_async_work *work) {
  napi_value promise, name;
  if (napi_create_promise(env, deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, data, work) != napi_ok ||
      napi_queue_async_work(env, *work) != napi_ok) {
    if (*work) napi_delete_async_work(env, *work);
    napi_throw_error(env, NULL, "berth_native: cannot queue a thread-pool job");
    return NULL;
  }
  return promise;
}

/* syncfs(path): a promise; flushes the filesystem holding path (after
 * unpacking a layer) on libuv's thread pool, since writeback can take
 * seconds and the daemon's event loop must not wait for it. */
struct syncfs_work {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  int err;
  const char *what;
};

static void syncfs_execute(napi_env env, void *data) {
  struct syncfs_work *w = data;
  int fd = open(w->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    w->err = errno;
    w->what = "open";
    return;
  }
  if (syncfs(fd) < 0) {
    w->err = errno;
    w->what = "syncfs";
  }
  close(fd);
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  struct syncfs_work *w = data;
  if (status != napi_ok && !w->err) {
    w->err = ECANCELED;
    w->what = "syncfs";
  }
  settle(env, w->deferred, w->err, w->what, w->path);
  napi_delete_async_work(env, w->work);
  free(w->path);
  free(w);
}

static napi_value Syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) < 0) return NULL;
  struct syncfs_work *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "syncfs", NULL);
  w->path = get_string(env, argv[0]);
  if (!w->path) {
    free(w);
    return NULL;
  }
  napi_value promise = queue_job(env, "berth:syncfs", syncfs_execute, syncfs_complete, w, &w->deferred, &w->work);
  if (!promise) {
    free(w->path);
    free(w);
  }
  return promise;
}

/* mallocTrim(): a promise; glibc's malloc_trim(0) on the thread pool. Memory
 * that threads freed (layer unpacking workers, the thread pool) stays in
 * glibc's arenas until trimmed; V8's memory reducer does not reach it. */
struct trim_work {
  napi_async_work work;
  napi_deferred deferred;
};

static void trim_execute(napi_env env, void *p) {
  malloc_trim(0);
}

static void trim_complete(napi_env env, napi_status status, void *p) {
  struct trim_work *w = p;
  settle(env, w->deferred, 0, NULL, NULL);
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value MallocTrim(napi_env env, napi_callback_info info) {
  struct trim_work *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "mallocTrim", NULL);
  napi_value promise = queue_job(env, "berth:mallocTrim", trim_execute, trim_complete, w, &w->deferred, &w->work);
  if (!promise) free(w);
  return promise;
}

/* writeFileAtomic(path, tmp, data, mode): a promise; a state file written
 * crash-safely (tmp beside it, fsync, rename over path, fsync of the
 * directory) as one job on the thread pool: through Node's fs API the same
 * is eight round trips, each a wake-up of the event loop. The buffer is held
 * by a reference until the job is done. */
struct atomic_write {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref data_ref;
  char *path, *tmp;
  const char *data;
  size_t len;
  int mode;
  int err;
  const char *what;
  const char *err_path;
};

static void atomic_write_execute(napi_env env, void *p) {
  struct atomic_write *w = p;
  int fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, w->mode);
  if (fd < 0) {
    w->err = errno, w->what = "open", w->err_path = w->tmp;
    return;
  }
  for (size_t off = 0; off < w->len;) {
    ssize_t n = write(fd, w->data + off, w->len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      w->err = errno, w->what = "write", w->err_path = w->tmp;
      goto fail;
    }
    off += (size_t)n;
  }
  if (fsync(fd) < 0) {
    w->err = errno, w->what = "fsync", w->err_path = w->tmp;
    goto fail;
  }
  int rc = close(fd);
  fd = -1;
  if (rc < 0 && errno != EINTR) {
    w->err = errno, w->what = "close", w->err_path = w->tmp;
    goto fail;
  }
  if (rename(w->tmp, w->path) < 0) {
    w->err = errno, w->what = "rename", w->err_path = w->path;
    goto fail;
  }
  /* the rename itself made durable: fsync of the directory */
  char *slash = strrchr(w->path, '/');
  int dfd;
  if (!slash) {
    dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else if (slash == w->path) {
    dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else {
    *slash = '\0';
    dfd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *slash = '/';
  }
  if (dfd < 0 || fsync(dfd) < 0) {
    w->err = errno, w->what = "fsync", w->err_path = w->path;
  }
  if (dfd >= 0) close(dfd);
  return;
fail:
  if (fd >= 0) close(fd);
  unlink(w->tmp);
}

static void atomic_write_complete(napi_env env, napi_status status, void *p) {
  struct atomic_write *w = p;
  if (status != napi_ok && !w->err) {
    w->err = ECANCELED, w->what = "write", w->err_path = w->path;
  }
  settle(env, w->deferred, w->err, w->what, w->err_path);
  napi_delete_reference(env, w->data_ref);
  napi_delete_async_work(env, w->work);
  free(w->path);
  free(w->tmp);
  free(w);
}

static napi_value WriteFileAtomic(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv) < 0) return NULL;
  bool is_buffer = false;
  if (napi_is_buffer(env, argv[2], &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, NULL, "data must be a Buffer");
    return NULL;
  }
  struct atomic_write *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "writeFileAtomic", NULL);
  int32_t mode;
  void *data;
  if (napi_get_value_int32(env, argv[3], &mode) != napi_ok || napi_get_buffer_info(env, argv[2], &data, &w->len) != napi_ok) {
    free(w);
    napi_throw_type_error(env, NULL, "expected (path, tmp, data, mode)");
    return NULL;
  }
  w->data = data;
  w->mode = mode;
  w->path = get_string(env, argv[0]);
  w->tmp = w->path ? get_string(env, argv[1]) : NULL;
  if (!w->tmp) {
    free(w->path);
    free(w);
    return NULL;
  }
  if (napi_create_reference(env, argv[2], 1, &w->data_ref) != napi_ok) {
    free(w->path);
    free(w->tmp);
    free(w);
    napi_throw_error(env, NULL, "berth_native: cannot hold the buffer");
    return NULL;
  }
  napi_value promise = queue_job(env, "berth:writeFileAtomic", atomic_write_execute, atomic_write_complete, w, &w->deferred, &w->work);
  if (!promise) {
    napi_delete_reference(env, w->data_ref);
    free(w->path);
    free(w->tmp);
    free(w);
  }
  return promise;
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

/* ---- processes: pipes, posix_spawn, exit watch ------------------------- */

/* [fds[0], fds[1]] as a JS array */
static napi_value fd_pair(napi_env env, const int fds[2]) {
  napi_value arr, v;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  for (uint32_t i = 0; i < 2; i++) {
    CHECK(napi_create_int32(env, fds[i], &v));
    CHECK(napi_set_element(env, arr, i, v));
  }
  return arr;
}

/* pipe(): [read, write], both close-on-exec */
static napi_value Pipe(napi_env env, napi_callback_info info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return throw_errno(env, errno, "pipe2", NULL);
  return fd_pair(env, fds);
}

/* socketpair(): two connected AF_UNIX stream sockets, close-on-exec */
static napi_value Socketpair(napi_env env, napi_callback_info info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) return throw_errno(env, errno, "socketpair", NULL);
  return fd_pair(env, fds);
}

/* sealedCopy(path): fd of a memfd holding the file, sealed against writes.
 * Executing /proc/self/fd/<fd> then never exposes the file on disk. */
static napi_value SealedCopy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) < 0) return NULL;
  char *path = get_string(env, argv[0]);
  if (!path) return NULL;
  int src = open(path, O_RDONLY | O_CLOEXEC);
  if (src < 0) {
    throw_errno(env, errno, "open", path);
    free(path);
    return NULL;
  }
  struct stat st;
  int mfd = -1, err = 0;
  if (fstat(src, &st) < 0) err = errno;
  const char *base = strrchr(path, '/');
  if (!err && (mfd = memfd_create(base ? base + 1 : path, MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0) err = errno;
  for (off_t done = 0; !err && done < st.st_size;) {
    ssize_t n = sendfile(mfd, src, NULL, (size_t)(st.st_size - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) err = n < 0 ? errno : EIO;
    else done += n;
  }
  if (!err && fchmod(mfd, 0500) < 0) err = errno;
  if (!err && fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) err = errno;
  close(src);
  if (err) {
    if (mfd >= 0) close(mfd);
    throw_errno(env, err, "sealed copy of", path);
    free(path);
    return NULL;
  }
  free(path);
  napi_value result;
  napi_create_int32(env, mfd, &result);
  return result;
}

typedef struct {
  uv_poll_t poll;
  int pidfd;
  pid_t pid;
  napi_env env;
  napi_ref callback; /* (code: number, signal: number) */
  napi_async_context async_context;
} exitwatch_t;

static void on_exitwatch_close(uv_handle_t *handle) {
  exitwatch_t *w = handle->data;
  close(w->pidfd);
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->async_context);
  free(w);
}

static void on_exit_poll(uv_poll_t *handle, int status, int events) {
  exitwatch_t *w = handle->data;
  int wstatus = 0;
  pid_t r;
  do r = waitpid(w->pid, &wstatus, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0 && status >= 0) return; /* not yet */
  uv_poll_stop(&w->poll);
  int code = -1, sig = 0;
  if (r == w->pid) {
    if (WIFEXITED(wstatus)) code = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus)) sig = WTERMSIG(wstatus);
  }
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    napi_value cb, global, argv[2], result;
    if (napi_get_reference_value(env, w->callback, &cb) == napi_ok && cb != NULL) {
      napi_get_global(env, &global);
      napi_create_int32(env, code, &argv[0]);
      napi_create_int32(env, sig, &argv[1]);
      napi_make_callback(env, w->async_context, global, cb, 2, argv, &result);
    }
    napi_close_handle_scope(env, scope);
  }
  uv_close((uv_handle_t *)&w->poll, on_exitwatch_close);
}

/* spawn(file, argv: string[], stdio: number[], onExit(code, signal), env?: string[]): pid
 * posix_spawn (vfork: no copy of our address space) with stdio[i] as fd i,
 * default signal dispositions, an empty mask and a session of its own; the
 * environment is env ("NAME=value" entries), empty without it. The child is
 * reaped here (libuv only reaps what it spawned itself). */
static napi_value Spawn(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t given = 5;
  if (get_args(env, info, 4, argv) < 0) return NULL;
  napi_get_cb_info(env, info, &given, argv, NULL, NULL);
  char *file = get_string(env, argv[0]);
  if (!file) return NULL;
  uint32_t argc = 0, nfds = 0, nenv = 0;
  bool has_env = false;
  if (given >= 5) napi_is_array(env, argv[4], &has_env);
  napi_get_array_length(env, argv[1], &argc);
  napi_get_array_length(env, argv[2], &nfds);
  if (has_env) napi_get_array_length(env, argv[4], &nenv);
  char **args = calloc(argc + 1, sizeof(char *));
  char **envp = calloc(nenv + 1, sizeof(char *));
  int *fds = calloc(nfds + 1, sizeof(int));
  napi_value result = NULL;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  int ok = args && envp && fds;
  if (!ok) throw_errno(env, ENOMEM, "posix_spawn", file);
  for (uint32_t i = 0; ok && i < argc; i++) {
    napi_value v;
    napi_get_element(env, argv[1], i, &v);
    if (!(args[i] = get_string(env, v))) ok = 0;
  }
  for (uint32_t i = 0; ok && i < nenv; i++) {
    napi_value v;
    napi_get_element(env, argv[4], i, &v);
    if (!(envp[i] = get_string(env, v))) ok = 0;
  }
  for (uint32_t i = 0; ok && i < nfds; i++) {
    napi_value v;
    napi_get_element(env, argv[2], i, &v);
    if (napi_get_value_int32(env, v, &fds[i]) != napi_ok || fds[i] < 0) {
      napi_throw_type_error(env, NULL, "stdio entries must be file descriptors");
      ok = 0;
    }
  }
  for (uint32_t i = 0; ok && i < nfds; i++) {
    /* a source among the targets would be overwritten before its own dup2 */
    if (fds[i] < (int)nfds && fds[i] != (int)i) {
      napi_throw_range_error(env, NULL, "stdio descriptors must be above the ones they become");
      ok = 0;
    }
  }
  if (ok) {
    /* dup2 onto 0..n-1; our descriptors are above them (0-2 are taken in a daemon) */
    for (uint32_t i = 0; i < nfds; i++) posix_spawn_file_actions_adddup2(&actions, fds[i], (int)i);
    sigset_t all, none;
    sigfillset(&all);
    /* glibc's sigfillset leaves out its internal signals (32, 33), and its
     * posix_spawn child sets those to SIG_IGN unless they are in the
     * set-default set, an ignore that exec keeps and every descendant (conmon,
     * runc, the container) would inherit. sigaddset refuses them: set the bits. */
    all.__val[0] |= 1UL << (32 - 1) | 1UL << (33 - 1);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
    pid_t pid;
    int err = posix_spawn(&pid, file, &actions, &attr, args, envp);
    if (err) {
      throw_errno(env, err, "posix_spawn", file);
    } else {
      int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
      if (pidfd < 0) {
        /* cannot watch it: do not leave it running unobserved */
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        throw_errno(env, e, "pidfd_open", file);
      } else {
        exitwatch_t *w = calloc(1, sizeof *w);
        w->pidfd = pidfd;
        w->pid = pid;
        w->env = env;
        napi_create_reference(env, argv[3], 1, &w->callback);
        napi_value resource_name;
        napi_create_string_utf8(env, "berth.exitwatch", NAPI_AUTO_LENGTH, &resource_name);
        napi_async_init(env, NULL, resource_name, &w->async_context);
        uv_loop_t *loop;
        napi_get_uv_event_loop(env, &loop);
        uv_poll_init(loop, &w->poll, pidfd);
        w->poll.data = w;
        uv_poll_start(&w->poll, UV_READABLE, on_exit_poll);
        napi_create_int32(env, pid, &result);
      }
    }
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (args)
    for (uint32_t i = 0; i < argc; i++) free(args[i]);
  if (envp)
    for (uint32_t i = 0; i < nenv; i++) free(envp[i]);
  free(args);
  free(envp);
  free(fds);
  free(file);
  return result;
}

/* ---- seccomp: OCI profile -> BPF, as runc 1.1 builds it ---------------- */

typedef struct {
  struct sock_filter *v;
  size_t n, cap;
} prog_t;

static int prog_prepend(prog_t *p, const struct sock_filter *ins, size_t count) {
  if (p->n + count > p->cap) {
    size_t cap = (p->n + count) * 2 + 16;
    struct sock_filter *v = realloc(p->v, cap * sizeof *v);
    if (!v) return -1;
    p->v = v;
    p->cap = cap;
  }
  memmove(p->v + count, p->v, p->n * sizeof *p->v);
  memcpy(p->v, ins, count * sizeof *ins);
  p->n += count;
  return 0;
}

/* golang.org/x/net/bpf encodings */
#define I_LOAD_ABS(off) ((struct sock_filter){BPF_LD | BPF_W | BPF_ABS, 0, 0, (off)})
#define I_JA(skip) ((struct sock_filter){BPF_JMP | BPF_JA, 0, 0, (skip)})
#define I_RET(val) ((struct sock_filter){BPF_RET | BPF_K, 0, 0, (val)})
#define I_JEQ(k, jt, jf) ((struct sock_filter){BPF_JMP | BPF_JEQ | BPF_K, (jt), (jf), (k)})
#define I_JGT(k, jt, jf) ((struct sock_filter){BPF_JMP | BPF_JGT | BPF_K, (jt), (jf), (k)})
#define I_JSET(k, jt, jf) ((struct sock_filter){BPF_JMP | BPF_JSET | BPF_K, (jt), (jf), (k)})

#define MAX_ARCHES 16

typedef struct {
  uint32_t native;                  /* AUDIT_ARCH_* */
  int n;                            /* scmp arches with a largest syscall (0..2) */
  uint32_t scmp[2];
  int32_t sysno[2];
  uint32_t jump;                    /* archJumpTable entry */
} arch_entry_t;

static uint32_t arch_to_native(uint32_t scmp) {
  /* x32 is x86_64 with bit 30 set in the syscall number */
  return scmp == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : scmp;
}

static int oci_arch(const char *name, uint32_t *out) {
  static const struct { const char *oci; uint32_t scmp; } archs[] = {
    {"SCMP_ARCH_X86", SCMP_ARCH_X86}, {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64}, {"SCMP_ARCH_X32", SCMP_ARCH_X32},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM}, {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64}, {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64}, {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL}, {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32}, {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64}, {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390}, {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
  };
  for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
    if (!strcmp(archs[i].oci, name)) {
      *out = archs[i].scmp;
      return 0;
    }
  return -1;
}

/* runc's getAction; -1 for an unknown or unsupported (notify) action */
static int64_t oci_action(const char *name, int has_errno, uint32_t errno_ret) {
  if (!strcmp(name, "SCMP_ACT_KILL") || !strcmp(name, "SCMP_ACT_KILL_THREAD")) return SCMP_ACT_KILL_THREAD;
  if (!strcmp(name, "SCMP_ACT_KILL_PROCESS")) return SCMP_ACT_KILL_PROCESS;
  if (!strcmp(name, "SCMP_ACT_ERRNO")) return SCMP_ACT_ERRNO(has_errno ? errno_ret & 0xffff : EPERM);
  if (!strcmp(name, "SCMP_ACT_TRAP")) return SCMP_ACT_TRAP;
  if (!strcmp(name, "SCMP_ACT_ALLOW")) return SCMP_ACT_ALLOW;
  if (!strcmp(name, "SCMP_ACT_TRACE")) return SCMP_ACT_TRACE(has_errno ? errno_ret & 0xffff : EPERM);
  if (!strcmp(name, "SCMP_ACT_LOG")) return SCMP_ACT_LOG;
  return -1;
}

static int oci_op(const char *name, enum scmp_compare *out) {
  static const struct { const char *oci; enum scmp_compare op; } ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(ops[i].oci, name)) {
      *out = ops[i].op;
      return 0;
    }
  return -1;
}

static char *prop_string(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok || t != napi_string) return NULL;
  return get_string(env, v);
}

/* 1 and *out set when obj[key] is a number; 0 when absent */
static int prop_number(napi_env env, napi_value obj, const char *key, double *out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  napi_get_value_double(env, v, out);
  return 1;
}

static uint32_t prop_array(napi_env env, napi_value obj, const char *key, napi_value *arr) {
  bool is_array = false;
  uint32_t n = 0;
  if (napi_get_named_property(env, obj, key, arr) != napi_ok || napi_is_array(env, *arr, &is_array) != napi_ok || !is_array) return 0;
  napi_get_array_length(env, *arr, &n);
  return n;
}

typedef struct {
  char *msg;
} compile_err_t;

static void set_err(compile_err_t *e, const char *fmt, const char *arg) {
  if (e->msg) return;
  e->msg = malloc(512);
  if (e->msg) snprintf(e->msg, 512, fmt, arg ? arg : "");
}

/* The -ENOSYS stub (runc's patchbpf.generateEnosysStub), arches in profile order. */
static int enosys_stub(arch_entry_t *arches, int n_arches, prog_t *out, compile_err_t *e) {
  const uint32_t enosys = SCMP_ACT_ERRNO(ENOSYS);
  struct sock_filter tail0[] = {I_JA(1), I_RET(enosys)};
  if (prog_prepend(out, tail0, 2) < 0) return -1;
  for (int a = 0; a < n_arches; a++) {
    arch_entry_t *ae = &arches[a];
    uint32_t base_enosys = (uint32_t)out->n - 1, base_filter = base_enosys + 1;
    struct sock_filter sec[16];
    size_t ns = 0;
    sec[ns++] = I_LOAD_ABS(0);
    if (ae->n == 0) continue;
    if (ae->n == 1) {
      uint32_t scmp = ae->scmp[0], sysno = (uint32_t)ae->sysno[0];
      if (scmp == SCMP_ARCH_S390 || scmp == SCMP_ARCH_S390X) {
        /* jne [setup=0],1 ; ret ENOSYS */
        sec[ns++] = I_JEQ(0, 0, 1);
        sec[ns++] = I_RET(enosys);
      }
      struct sock_filter st[3];
      size_t nt = 0;
      if (base_enosys + 1 <= 255) {
        st[nt++] = I_JGT(sysno, (uint8_t)(base_enosys + 1), 0);
        st[nt++] = I_JA(base_filter);
      } else {
        st[nt++] = I_JGT(sysno, 0, 1); /* jle sysno,1 */
        st[nt++] = I_JA(base_enosys + 1);
        st[nt++] = I_JA(base_filter);
      }
      if (ae->native == SCMP_ARCH_X86_64) {
        if (scmp == SCMP_ARCH_X86_64) sec[ns++] = I_JSET(1u << 30, (uint8_t)(nt - 1), 0);
        else if (scmp == SCMP_ARCH_X32) sec[ns++] = I_JSET(1u << 30, 0, (uint8_t)(nt - 1));
        else {
          set_err(e, "unknown amd64 native architecture%s", NULL);
          return -1;
        }
      }
      memcpy(sec + ns, st, nt * sizeof st[0]);
      ns += nt;
    } else {
      if (ae->native != SCMP_ARCH_X86_64) {
        set_err(e, "unknown architecture overlap%s", NULL);
        return -1;
      }
      uint32_t x86 = 0, x32 = 0;
      for (int i = 0; i < 2; i++) {
        if (ae->scmp[i] == SCMP_ARCH_X86_64) x86 = (uint32_t)ae->sysno[i];
        else x32 = (uint32_t)ae->sysno[i];
      }
      if (base_enosys + 2 <= 255) {
        sec[ns++] = I_JSET(1u << 30, 1, 0);
        sec[ns++] = I_JGT(x86, (uint8_t)(base_enosys + 2), 1);
        sec[ns++] = I_JGT(x32, (uint8_t)(base_enosys + 1), 0);
        sec[ns++] = I_JA(base_filter);
      } else {
        sec[ns++] = I_JSET(1u << 30, 1, 0);
        sec[ns++] = I_JGT(x86, 1, 2);
        sec[ns++] = I_JGT(x32, 0, 1); /* jle x32,1 */
        sec[ns++] = I_JA(base_enosys + 1);
        sec[ns++] = I_JA(base_filter);
      }
    }
    if (prog_prepend(out, sec, ns) < 0) return -1;
    ae->jump = (uint32_t)out->n;
  }
  struct sock_filter ja = I_JA((uint32_t)out->n);
  if (prog_prepend(out, &ja, 1) < 0) return -1;
  for (int a = 0; a < n_arches; a++) {
    uint32_t jump = (uint32_t)out->n - arches[a].jump;
    if (jump <= 255) {
      struct sock_filter j = I_JEQ(arches[a].native, (uint8_t)jump, 0);
      if (prog_prepend(out, &j, 1) < 0) return -1;
    } else {
      struct sock_filter j[2] = {I_JEQ(arches[a].native, 0, 1), I_JA(jump)}; /* jne arch,1 ; ja jump */
      if (prog_prepend(out, j, 2) < 0) return -1;
    }
  }
  struct sock_filter ld = I_LOAD_ABS(4);
  return prog_prepend(out, &ld, 1);
}

/* seccompCompile(profile: OCI LinuxSeccomp): Buffer (struct sock_filter[]) */
static napi_value SeccompCompile(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) < 0) return NULL;
  napi_value profile = argv[0], archs_v, calls_v;
  compile_err_t e = {NULL};
  scmp_filter_ctx ctx = NULL;
  prog_t prog = {NULL, 0, 0};
  arch_entry_t arches[MAX_ARCHES];
  int n_arches = 0;
  napi_value result = NULL;
  int memfd = -1;

  char *def_name = prop_string(env, profile, "defaultAction");
  double num;
  int has_def_errno = prop_number(env, profile, "defaultErrnoRet", &num);
  uint32_t def_errno = has_def_errno ? (uint32_t)num : 0;
  int64_t def_act = def_name ? oci_action(def_name, has_def_errno, def_errno) : -1;
  uint32_t n_archs = prop_array(env, profile, "architectures", &archs_v);
  uint32_t n_calls = prop_array(env, profile, "syscalls", &calls_v);
  uint32_t scmp_archs[MAX_ARCHES];
  if (def_act < 0) set_err(&e, "unsupported seccomp default action %s", def_name);
  if (!e.msg && n_archs > MAX_ARCHES) set_err(&e, "too many seccomp architectures%s", NULL);
  for (uint32_t i = 0; !e.msg && i < n_archs; i++) {
    napi_value v;
    napi_get_element(env, archs_v, i, &v);
    char *name = get_string(env, v);
    if (!name || oci_arch(name, &scmp_archs[i]) < 0) set_err(&e, "unsupported seccomp architecture %s", name);
    free(name);
  }
  if (!e.msg && !(ctx = seccomp_init((uint32_t)def_act))) set_err(&e, "seccomp_init failed%s", NULL);
  for (uint32_t i = 0; !e.msg && i < n_archs; i++) {
    int rc = seccomp_arch_add(ctx, scmp_archs[i]);
    if (rc < 0 && rc != -EEXIST) set_err(&e, "error adding architecture to seccomp filter: %s", strerror(-rc));
  }
  if (!e.msg) seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  /* findLastSyscalls: over every rule name, per (native arch, scmp arch) */
  for (uint32_t i = 0; !e.msg && i < n_archs; i++) {
    uint32_t native = arch_to_native(scmp_archs[i]);
    arch_entry_t *ae = NULL;
    for (int a = 0; a < n_arches; a++)
      if (arches[a].native == native) ae = &arches[a];
    if (!ae) {
      ae = &arches[n_arches++];
      memset(ae, 0, sizeof *ae);
      ae->native = native;
    }
    int seen = 0;
    for (int k = 0; k < ae->n; k++) seen |= ae->scmp[k] == scmp_archs[i];
    if (seen || ae->n == 2) continue;
    int32_t largest = 0;
    for (uint32_t c = 0; c < n_calls; c++) {
      napi_value call, names_v;
      napi_get_element(env, calls_v, c, &call);
      uint32_t n_names = prop_array(env, call, "names", &names_v);
      for (uint32_t k = 0; k < n_names; k++) {
        napi_value nv;
        napi_get_element(env, names_v, k, &nv);
        char *name = get_string(env, nv);
        if (!name) continue;
        int nr = seccomp_syscall_resolve_name_arch(scmp_archs[i], name);
        free(name);
        if (nr != __NR_SCMP_ERROR && nr > largest) largest = nr;
      }
    }
    if (largest != 0) {
      ae->scmp[ae->n] = scmp_archs[i];
      ae->sysno[ae->n] = largest;
      ae->n++;
    }
  }
  /* the rules, as runc's matchCall adds them */
  for (uint32_t c = 0; !e.msg && c < n_calls; c++) {
    napi_value call, names_v, args_v;
    napi_get_element(env, calls_v, c, &call);
    char *action = prop_string(env, call, "action");
    int has_errno = prop_number(env, call, "errnoRet", &num);
    int64_t act = action ? oci_action(action, has_errno, has_errno ? (uint32_t)num : 0) : -1;
    if (act < 0) set_err(&e, "unsupported seccomp action %s", action);
    free(action);
    uint32_t n_names = prop_array(env, call, "names", &names_v);
    uint32_t n_args = prop_array(env, call, "args", &args_v);
    struct scmp_arg_cmp *conds = calloc(n_args + 1, sizeof *conds);
    unsigned counts[6] = {0};
    int multiple = 0;
    for (uint32_t k = 0; !e.msg && k < n_args; k++) {
      napi_value a;
      napi_get_element(env, args_v, k, &a);
      double index = 0, value = 0, value_two = 0;
      prop_number(env, a, "index", &index);
      prop_number(env, a, "value", &value);
      prop_number(env, a, "valueTwo", &value_two);
      char *op = prop_string(env, a, "op");
      enum scmp_compare cmp = SCMP_CMP_EQ;
      if (!op || oci_op(op, &cmp) < 0 || index < 0 || index > 5) set_err(&e, "unsupported seccomp argument operator %s", op);
      free(op);
      if (e.msg) break;
      conds[k].arg = (unsigned)index;
      conds[k].op = cmp;
      conds[k].datum_a = (scmp_datum_t)value;
      conds[k].datum_b = (scmp_datum_t)value_two;
      if (++counts[(unsigned)index] > 1) multiple = 1;
    }
    for (uint32_t k = 0; !e.msg && act != def_act && k < n_names; k++) {
      napi_value nv;
      napi_get_element(env, names_v, k, &nv);
      char *name = get_string(env, nv);
      if (!name) continue;
      int nr = seccomp_syscall_resolve_name(name);
      int rc = 0;
      if (nr == __NR_SCMP_ERROR) {
        /* unknown to this libseccomp: runc skips it too */
      } else if (n_args == 0) {
        rc = seccomp_rule_add(ctx, (uint32_t)act, nr, 0);
      } else if (multiple) {
        for (uint32_t q = 0; rc == 0 && q < n_args; q++) rc = seccomp_rule_add_array(ctx, (uint32_t)act, nr, 1, &conds[q]);
      } else {
        rc = seccomp_rule_add_array(ctx, (uint32_t)act, nr, n_args, conds);
      }
      if (rc < 0) set_err(&e, "error adding seccomp filter rule for syscall %s", name);
      free(name);
    }
    free(conds);
  }
  /* export, then prepend the stub (unless the default is permissive, as runc) */
  if (!e.msg) {
    memfd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
    if (memfd < 0 || seccomp_export_bpf(ctx, memfd) < 0) set_err(&e, "error exporting seccomp BPF%s", NULL);
  }
  if (!e.msg) {
    off_t size = lseek(memfd, 0, SEEK_END);
    size_t count = size > 0 ? (size_t)size / sizeof(struct sock_filter) : 0;
    prog.v = malloc((count + 1) * sizeof *prog.v);
    prog.n = prog.cap = count;
    if (!prog.v || pread(memfd, prog.v, count * sizeof *prog.v, 0) != (ssize_t)(count * sizeof *prog.v)) set_err(&e, "error reading seccomp BPF%s", NULL);
  }
  int permissive = def_act == SCMP_ACT_ALLOW || def_act == SCMP_ACT_LOG || (def_act & 0xffff0000u) == SCMP_ACT_TRACE(0);
  int enosys_default = has_def_errno && def_errno == SCMP_ACT_ERRNO(ENOSYS); /* runc's own comparison */
  if (!e.msg && !permissive && !enosys_default) {
    /* the stub's jumps are measured within the stub: build it alone, then prepend */
    prog_t stub = {NULL, 0, 0};
    if (enosys_stub(arches, n_arches, &stub, &e) < 0 || prog_prepend(&prog, stub.v, stub.n) < 0) set_err(&e, "error generating -ENOSYS stub%s", NULL);
    free(stub.v);
  }
  if (!e.msg && prog.n > BPF_MAXINSNS) set_err(&e, "seccomp program too long%s", NULL);
  if (!e.msg) {
    void *out;
    napi_create_buffer_copy(env, prog.n * sizeof *prog.v, prog.v, &out, &result);
  } else {
    napi_throw_error(env, NULL, e.msg);
  }
  if (memfd >= 0) close(memfd);
  if (ctx) seccomp_release(ctx);
  free(prog.v);
  free(def_name);
  free(e.msg);
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"mknod", NULL, Mknod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, Lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, Lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"llistxattr", NULL, Llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"syncfs", NULL, Syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writeFileAtomic", NULL, WriteFileAtomic, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mallocTrim", NULL, MallocTrim, NULL, NULL, NULL, napi_enumerable, NULL},
    {"createNetns", NULL, CreateNetns, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mount", NULL, Mount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"umount2", NULL, Umount2, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketConnect", NULL, SeqpacketConnect, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketWrite", NULL, SeqpacketWrite, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketShutdown", NULL, SeqpacketShutdown, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketClose", NULL, SeqpacketClose, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pipe", NULL, Pipe, NULL, NULL, NULL, napi_enumerable, NULL},
    {"socketpair", NULL, Socketpair, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sealedCopy", NULL, SealedCopy, NULL, NULL, NULL, napi_enumerable, NULL},
    {"spawn", NULL, Spawn, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setTopdir", NULL, SetTopdir, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seccompCompile", NULL, SeccompCompile, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gunzipCreate", NULL, GunzipCreate, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gunzipRun", NULL, GunzipRun, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gunzipClose", NULL, GunzipClose, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
