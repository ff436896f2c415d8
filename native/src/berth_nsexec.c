/*
 * berth-nsexec: runs one process inside a running container the way
 * `runc exec` does (libcontainer's nsexec + setns init), without runc's two
 * Go process start-ups. berthd starts it for attached, non-tty exec sessions.
 *
 * berthd spawns it with the session's stdio on fds 0-2 and a control socket
 * on fd 3. On fd 3 berthd sends the request: a little-endian u32 length, then
 * that many bytes of NUL-terminated "key=value" entries (see parse_request).
 * The helper answers on fd 3 with one line, "pid <host pid>\n" once the
 * command was exec'd, or "error <message>\n" when it could not be (the
 * message is runc's), and then exits with the process's status (128+signal
 * when it was killed).
 *
 * What it does, in runc's order:
 *   parent: non-dumpable; fds above 3 closed; pidfd on the container's init
 *           and a check that it is still the container's (pid reuse); the
 *           namespaces and the cgroup files opened (all before joining any);
 *           setns into each namespace; fork (the child is born inside the pid
 *           namespace, and, by clone3 CLONE_INTO_CGROUP, in the init's cgroup
 *           v2 cgroup).
 *   child:  joins the init's cgroup v1 hierarchies (writes 0 into each
 *           hierarchy's "tasks": moving oneself skips the global threadgroup
 *           lock, whose RCU grace period costs ~15 ms per cgroup.procs write
 *           here; runc pays it on every exec), then, like runc's init:
 *           setsid, oom_score_adj, rlimits, the container's session keyring,
 *           no_new_privs, seccomp (before dropping privileges unless
 *           no_new_privs), bounding set, keepcaps + groups/gid/uid, cwd,
 *           capabilities (incl. ambient), AppArmor exec profile, seccomp
 *           (here when no_new_privs), PATH lookup as Go's exec.LookPath, execve.
 *   parent: forwards signals to the child, waits, exits with its status.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define CTL_FD 3
#define MAX_REQUEST (64u << 20)
#define MAX_NS 8
#define MAX_CGROUPS 32
#define MAX_RLIMITS 32
/* struct clone_args (linux/sched.h), kept here: that header clashes with glibc's */
struct clone_args_v2 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define CLONE_INTO_CGROUP_FLAG 0x200000000ULL

struct rlimit_req {
  int resource;
  struct rlimit limit;
};

struct request {
  pid_t init_pid;
  const char *container_id;
  const char *ns[MAX_NS];
  int n_ns;
  const char *cgroups[MAX_CGROUPS]; /* cgroup v1 hierarchies */
  int n_cgroups;
  const char *cgroup2;               /* the unified hierarchy (v2 or hybrid) */
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  int n_groups;
  uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
  int no_new_privs;
  const char *oom_score_adj;
  struct rlimit_req rlimits[MAX_RLIMITS];
  int n_rlimits;
  const char *apparmor;
  struct sock_filter *seccomp;
  unsigned short seccomp_len;
  const char *keyring;
  const char *cwd;
  char **argv;
  int argc;
  char **envp;
  int envc;
};

static volatile sig_atomic_t child_pid;

/* ---- reporting ----------------------------------------------------------- */

/* One line to berthd. MSG_NOSIGNAL: a gone daemon must not kill us with SIGPIPE. */
static void report(const char *fmt, ...) {
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
  for (int i = 0; i < n; i++)
    if (line[i] == '\n') line[i] = ' ';
  line[n++] = '\n';
  for (int off = 0; off < n;) {
    ssize_t w = send(CTL_FD, line + off, (size_t)(n - off), MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) w = write(CTL_FD, line + off, (size_t)(n - off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    off += (int)w;
  }
}

/* A setup failure in the parent, before any process of the session exists. */
static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  report("error exec failed: unable to start container process: %s", msg);
  _exit(126);
}

/* Go prints errno texts in lower case ("no such file or directory"). */
static const char *go_strerror(int err) {
  static char buf[128];
  snprintf(buf, sizeof buf, "%s", strerror(err));
  buf[0] = (char)tolower((unsigned char)buf[0]);
  return buf;
}

/* ---- the request ---------------------------------------------------------- */

static int read_full(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int parse_u64(const char *s, int base, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, base);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void parse_request(char *buf, size_t len, struct request *r) {
  int argcap = 16, envcap = 64;
  r->argv = calloc((size_t)argcap, sizeof(char *));
  r->envp = calloc((size_t)envcap, sizeof(char *));
  if (!r->argv || !r->envp) fail("out of memory");
  for (size_t off = 0; off < len;) {
    char *entry = buf + off;
    size_t n = strnlen(entry, len - off);
    if (off + n >= len) fail("malformed request");
    off += n + 1;
    char *eq = strchr(entry, '=');
    if (!eq) fail("malformed request entry");
    *eq = '\0';
    const char *key = entry;
    char *val = eq + 1;
    uint64_t u;
    if (!strcmp(key, "pid")) {
      if (parse_u64(val, 10, &u) || u == 0 || u > INT_MAX) fail("bad pid");
      r->init_pid = (pid_t)u;
    } else if (!strcmp(key, "id")) {
      r->container_id = val;
    } else if (!strcmp(key, "ns")) {
      if (r->n_ns == MAX_NS) fail("too many namespaces");
      r->ns[r->n_ns++] = val;
    } else if (!strcmp(key, "cgroup")) {
      if (r->n_cgroups == MAX_CGROUPS) fail("too many cgroups");
      r->cgroups[r->n_cgroups++] = val;
    } else if (!strcmp(key, "cgroup2")) {
      r->cgroup2 = val;
    } else if (!strcmp(key, "uid")) {
      if (parse_u64(val, 10, &u) || u > UINT32_MAX - 1) fail("bad uid");
      r->uid = (uid_t)u;
    } else if (!strcmp(key, "gid")) {
      if (parse_u64(val, 10, &u) || u > UINT32_MAX - 1) fail("bad gid");
      r->gid = (gid_t)u;
    } else if (!strcmp(key, "groups")) {
      int count = *val ? 1 : 0;
      for (char *p = val; *p; p++) count += *p == ',';
      r->groups = calloc((size_t)count + 1, sizeof(gid_t));
      if (!r->groups) fail("out of memory");
      for (char *tok = strtok(val, ","); tok; tok = strtok(NULL, ",")) {
        if (parse_u64(tok, 10, &u) || u > UINT32_MAX - 1) fail("bad group");
        r->groups[r->n_groups++] = (gid_t)u;
      }
    } else if (!strncmp(key, "cap.", 4)) {
      if (parse_u64(val, 16, &u)) fail("bad capability mask");
      if (!strcmp(key, "cap.bounding")) r->cap_bounding = u;
      else if (!strcmp(key, "cap.effective")) r->cap_effective = u;
      else if (!strcmp(key, "cap.permitted")) r->cap_permitted = u;
      else if (!strcmp(key, "cap.inheritable")) r->cap_inheritable = u;
      else if (!strcmp(key, "cap.ambient")) r->cap_ambient = u;
      else fail("unknown capability set %s", key);
    } else if (!strcmp(key, "nnp")) {
      r->no_new_privs = !strcmp(val, "1");
    } else if (!strcmp(key, "oom")) {
      r->oom_score_adj = val;
    } else if (!strcmp(key, "rlimit")) {
      /* resource:soft:hard */
      if (r->n_rlimits == MAX_RLIMITS) fail("too many rlimits");
      char *soft = strchr(val, ':');
      char *hard = soft ? strchr(soft + 1, ':') : NULL;
      if (!soft || !hard) fail("bad rlimit");
      *soft++ = '\0';
      *hard++ = '\0';
      uint64_t res, s, h;
      if (parse_u64(val, 10, &res) || parse_u64(soft, 10, &s) || parse_u64(hard, 10, &h)) fail("bad rlimit");
      r->rlimits[r->n_rlimits].resource = (int)res;
      r->rlimits[r->n_rlimits].limit.rlim_cur = (rlim_t)s;
      r->rlimits[r->n_rlimits].limit.rlim_max = (rlim_t)h;
      r->n_rlimits++;
    } else if (!strcmp(key, "apparmor")) {
      r->apparmor = val;
    } else if (!strcmp(key, "seccomp")) {
      /* hex of the BPF program, struct sock_filter in host byte order */
      size_t hex = strlen(val);
      if (hex == 0 || hex % (2 * sizeof(struct sock_filter)) || hex / 2 / sizeof(struct sock_filter) > BPF_MAXINSNS) fail("bad seccomp program");
      unsigned char *prog = malloc(hex / 2);
      if (!prog) fail("out of memory");
      for (size_t i = 0; i < hex / 2; i++) {
        int hi = hexval(val[2 * i]), lo = hexval(val[2 * i + 1]);
        if (hi < 0 || lo < 0) fail("bad seccomp program");
        prog[i] = (unsigned char)(hi << 4 | lo);
      }
      r->seccomp = (struct sock_filter *)prog;
      r->seccomp_len = (unsigned short)(hex / 2 / sizeof(struct sock_filter));
    } else if (!strcmp(key, "keyring")) {
      r->keyring = val;
    } else if (!strcmp(key, "cwd")) {
      r->cwd = val;
    } else if (!strcmp(key, "arg")) {
      if (r->argc + 1 >= argcap) {
        argcap *= 2;
        r->argv = realloc(r->argv, (size_t)argcap * sizeof(char *));
        if (!r->argv) fail("out of memory");
      }
      r->argv[r->argc++] = val;
      r->argv[r->argc] = NULL;
    } else if (!strcmp(key, "env")) {
      if (r->envc + 1 >= envcap) {
        envcap *= 2;
        r->envp = realloc(r->envp, (size_t)envcap * sizeof(char *));
        if (!r->envp) fail("out of memory");
      }
      r->envp[r->envc++] = val;
      r->envp[r->envc] = NULL;
    } else {
      fail("unknown request entry %s", key);
    }
  }
  if (!r->init_pid || !r->container_id || !*r->container_id || r->argc == 0) fail("incomplete request");
}

/* ---- parent side ------------------------------------------------------------ */

static int ns_flag(const char *name) {
  if (!strcmp(name, "ipc")) return CLONE_NEWIPC;
  if (!strcmp(name, "uts")) return CLONE_NEWUTS;
  if (!strcmp(name, "net")) return CLONE_NEWNET;
  if (!strcmp(name, "pid")) return CLONE_NEWPID;
  if (!strcmp(name, "mnt")) return CLONE_NEWNS;
  if (!strcmp(name, "cgroup")) return CLONE_NEWCGROUP;
  return -1;
}

static void close_fds_from(int lowest) {
  if (syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) == 0) return;
  /* kernels before 5.9 */
  for (int fd = lowest; fd < 65536; fd++) close(fd);
}

/* The init's cgroup file names the container (its cgroup path ends in the ID). */
static int init_is_container(pid_t pid, const char *id) {
  char path[64], buf[16384];
  snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n, len = 0;
  while (len < (ssize_t)sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - (size_t)len)) > 0) len += n;
  close(fd);
  buf[len > 0 ? len : 0] = '\0';
  char needle[300];
  snprintf(needle, sizeof needle, "/%s\n", id);
  if (strstr(buf, needle)) return 1;
  snprintf(needle, sizeof needle, "/%s/", id);
  return strstr(buf, needle) != NULL;
}

static void forward_signal(int sig) {
  if (child_pid > 0) kill(child_pid, sig);
}

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGWINCH};
#define N_FORWARDED (sizeof forwarded / sizeof forwarded[0])

/* ---- child side ------------------------------------------------------------- */

static int err_fd = -1;

/* A failure before execve: runc's message goes to the parent, which reports it. */
static void child_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void child_fail(const char *fmt, ...) {
  char msg[4096];
  int n = snprintf(msg, sizeof msg, "unable to start container process: ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  size_t len = strlen(msg);
  for (size_t off = 0; off < len;) {
    ssize_t w = write(err_fd, msg + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  _exit(127);
}

static int write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, data, strlen(data));
  int err = errno;
  close(fd);
  errno = err;
  return n == (ssize_t)strlen(data) ? 0 : -1;
}

static void load_seccomp(const struct request *r) {
  struct sock_fprog prog = {.len = r->seccomp_len, .filter = r->seccomp};
  /* runc loads with prctl (no filter flags): same semantics, same result */
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
    child_fail("error loading seccomp filter into kernel: error loading seccomp filter: %s", go_strerror(errno));
}

static int cap_last_cap = CAP_LAST_CAP;

static void drop_bounding_set(uint64_t keep) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) < 0) child_fail("unable to apply bounding set: %s", go_strerror(errno));
  /* as gocapability: only with CAP_SETPCAP in the effective set */
  if (!(data[0].effective & (1u << CAP_SETPCAP))) return;
  for (int cap = 0; cap <= cap_last_cap; cap++) {
    if (keep & (1ull << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      child_fail("unable to apply bounding set: %s", go_strerror(errno));
  }
}

static void apply_caps(const struct request *r) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  for (int i = 0; i < 2; i++) {
    data[i].effective = (uint32_t)(r->cap_effective >> (32 * i));
    data[i].permitted = (uint32_t)(r->cap_permitted >> (32 * i));
    data[i].inheritable = (uint32_t)(r->cap_inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &hdr, data) < 0) child_fail("unable to apply caps: %s", go_strerror(errno));
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    child_fail("unable to apply caps: %s", go_strerror(errno));
  for (int cap = 0; cap <= cap_last_cap; cap++) {
    if (!(r->cap_ambient & (1ull << cap))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EINVAL)
      child_fail("unable to apply caps: %s", go_strerror(errno));
  }
}

/* runc's fixStdioPermissions: stdio the new user could not reopen is chowned to it. */
static void fix_stdio_permissions(uid_t uid) {
  struct stat null, st;
  if (stat("/dev/null", &null) < 0) child_fail("stat /dev/null: %s", go_strerror(errno));
  for (int fd = 0; fd <= 2; fd++) {
    if (fstat(fd, &st) < 0) child_fail("fstat %d: %s", fd, go_strerror(errno));
    if (st.st_uid == uid || st.st_rdev == null.st_rdev) continue;
    if (fchown(fd, uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
      child_fail("unable to setup user: chown stdio: %s", go_strerror(errno));
  }
}

/* Go's strconv.Quote for the names in exec errors (printable ASCII stays). */
static const char *go_quote(const char *s) {
  static char buf[4200];
  size_t o = 0;
  buf[o++] = '"';
  for (; *s && o < sizeof buf - 8; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      buf[o++] = '\\';
      buf[o++] = (char)c;
    } else if (c == '\n') {
      buf[o++] = '\\';
      buf[o++] = 'n';
    } else if (c == '\t') {
      buf[o++] = '\\';
      buf[o++] = 't';
    } else if (c < 0x20 || c == 0x7f) {
      o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", c);
    } else {
      buf[o++] = (char)c;
    }
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

/* Go 1.19's findExecutable: a regular (non-directory) file with an x bit. */
static int find_executable(const char *file, int *stat_errno) {
  struct stat st;
  if (stat(file, &st) < 0) {
    *stat_errno = errno;
    return -1;
  }
  *stat_errno = 0;
  if (!S_ISDIR(st.st_mode) && (st.st_mode & 0111)) return 0;
  return -1;
}

static const char *env_get(char **envp, const char *name) {
  size_t n = strlen(name);
  for (char **e = envp; *e; e++)
    if (!strncmp(*e, name, n) && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

/* exec.LookPath as runc 1.1 (Go 1.19) runs it, with the process's PATH. */
static char *look_path(const char *file, char **envp) {
  static char found[PATH_MAX];
  int serr;
  if (strchr(file, '/')) {
    if (find_executable(file, &serr) == 0) return (char *)file;
    if (serr) child_fail("exec: %s: stat %s: %s", go_quote(file), file, go_strerror(serr));
    child_fail("exec: %s: permission denied", go_quote(file));
  }
  const char *path = env_get(envp, "PATH");
  if (path && *path) {
    for (const char *p = path;;) {
      const char *colon = strchr(p, ':');
      size_t n = colon ? (size_t)(colon - p) : strlen(p);
      char dir[PATH_MAX];
      if (n == 0) strcpy(dir, ".");
      else if (n < sizeof dir) {
        memcpy(dir, p, n);
        dir[n] = '\0';
      } else dir[0] = '\0';
      if (dir[0]) {
        /* filepath.Join cleans "dir/" + file; a trailing slash is all that matters here */
        size_t dl = strlen(dir);
        while (dl > 1 && dir[dl - 1] == '/') dir[--dl] = '\0';
        if (!strcmp(dir, ".")) snprintf(found, sizeof found, "%s", file);
        else snprintf(found, sizeof found, "%s/%s", dir, file);
        if (find_executable(found, &serr) == 0) {
          if (found[0] != '/') child_fail("exec: %s: cannot run executable found relative to current directory", go_quote(file));
          return found;
        }
      }
      if (!colon) break;
      p = colon + 1;
    }
  }
  child_fail("exec: %s: executable file not found in $PATH", go_quote(file));
}

static void child(const struct request *r, int sync_fd, const int *tasks_fds) {
  /* Our own thread into each v1 hierarchy ("0" = the writer). Single-threaded,
   * so this moves the whole process, without the global threadgroup lock. */
  for (int i = 0; i < r->n_cgroups; i++) {
    ssize_t w;
    do w = write(tasks_fds[i], "0", 1);
    while (w < 0 && errno == EINTR);
    if (w != 1) child_fail("error adding pid %d to cgroups: failed to write 0 into %s/tasks: %s", (int)syscall(SYS_getpid), r->cgroups[i], go_strerror(errno));
    close(tasks_fds[i]);
  }
  /* The parent may have the cgroup v2 placement left to do. */
  char go;
  ssize_t n;
  do n = read(sync_fd, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) _exit(126);
  close(sync_fd);

  if (setsid() < 0) child_fail("setsid failed: %s", go_strerror(errno));
  if (r->oom_score_adj && write_file("/proc/self/oom_score_adj", r->oom_score_adj) < 0)
    child_fail("failed to update /proc/self/oom_score_adj: %s", go_strerror(errno));
  for (int i = 0; i < r->n_rlimits; i++)
    if (setrlimit(r->rlimits[i].resource, &r->rlimits[i].limit) < 0)
      child_fail("error setting rlimits for process: %s", go_strerror(errno));
  /* Do not inherit berthd's session keyring (runc joins _ses.<id>). */
  if (r->keyring && *r->keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, r->keyring, 0, 0, 0) < 0 && errno != ENOSYS)
    child_fail("unable to join session keyring: %s", go_strerror(errno));
  if (r->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail("prctl(PR_SET_NO_NEW_PRIVS): %s", go_strerror(errno));
  /* Without no_new_privs loading a filter needs CAP_SYS_ADMIN: before the drop. */
  if (r->seccomp && !r->no_new_privs) load_seccomp(r);

  /* finalizeNamespace */
  int chdir_later = 0;
  if (r->cwd && *r->cwd && chdir(r->cwd) < 0) {
    if (errno != EACCES && errno != EPERM)
      child_fail("chdir to cwd (%s) set in config.json failed: %s", go_quote(r->cwd), go_strerror(errno));
    chdir_later = 1;
  }
  drop_bounding_set(r->cap_bounding);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) child_fail("unable to set keep caps: %s", go_strerror(errno));
  fix_stdio_permissions(r->uid);
  /* raw system calls, as runc's: glibc's setxid broadcast is for threads we do not have */
  if (syscall(SYS_setgroups, (size_t)r->n_groups, r->groups) < 0) child_fail("unable to setup user: setgroups: %s", go_strerror(errno));
  if (syscall(SYS_setresgid, r->gid, r->gid, r->gid) < 0) child_fail("unable to setup user: setgid: %s", go_strerror(errno));
  if (syscall(SYS_setresuid, r->uid, r->uid, r->uid) < 0) child_fail("unable to setup user: setuid: %s", go_strerror(errno));
  if (chdir_later && chdir(r->cwd) < 0)
    child_fail("chdir to cwd (%s) set in config.json failed: %s", go_quote(r->cwd), go_strerror(errno));
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) child_fail("unable to clear keep caps: %s", go_strerror(errno));
  apply_caps(r);

  if (r->apparmor && *r->apparmor) {
    char attr[4200];
    snprintf(attr, sizeof attr, "exec %s", r->apparmor);
    if (write_file("/proc/self/attr/apparmor/exec", attr) < 0 && (errno != ENOENT || write_file("/proc/self/attr/exec", attr) < 0))
      child_fail("apparmor failed to apply profile: %s", go_strerror(errno));
  }
  /* With no_new_privs, as close to execve as possible. */
  if (r->seccomp && r->no_new_privs) load_seccomp(r);

  const char *name = look_path(r->argv[0], r->envp);
  for (;;) {
    execve(name, r->argv, r->envp);
    if (errno != EINTR) break;
  }
  child_fail("exec %s: %s", name, go_strerror(errno));
}

/* Every signal back to its default. posix_spawn leaves glibc's internal
 * signals (32, 33) ignored, and an ignored signal stays ignored across
 * execve; runc's Go runtime catches everything, so its children start with
 * all defaults. glibc refuses to touch 32 and 33: the raw system call, with
 * a zeroed kernel sigaction (handler SIG_DFL whatever the arch's layout). */
static void default_signals(void) {
  static const unsigned char zero[64];
  for (int sig = 1; sig < _NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    syscall(SYS_rt_sigaction, sig, zero, NULL, (size_t)(_NSIG / 8));
  }
}

int main(void) {
  default_signals();
  /* Container processes must not ptrace us or open our /proc fds while we hold host resources. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) fail("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
  close_fds_from(CTL_FD + 1);
  prctl(PR_SET_NAME, "berth-nsexec", 0, 0, 0);

  uint32_t len = 0;
  if (read_full(CTL_FD, &len, sizeof len) < 0) fail("no request on fd %d", CTL_FD);
  if (len == 0 || len > MAX_REQUEST) fail("request too large");
  char *buf = malloc(len);
  if (!buf || read_full(CTL_FD, buf, len) < 0) fail("short request");
  struct request r;
  memset(&r, 0, sizeof r);
  parse_request(buf, len, &r);

  char capbuf[32];
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, capbuf, sizeof capbuf - 1);
    if (n > 0) {
      capbuf[n] = '\0';
      cap_last_cap = atoi(capbuf);
    }
    close(fd);
  }

  /* Pin the init with a pidfd, then check it is still the container's: if the
   * pidfd's process is alive after everything was opened, every /proc/<pid>
   * path above referred to it, not to a process that reused the pid. */
  int pidfd = (int)syscall(SYS_pidfd_open, r.init_pid, 0);
  if (pidfd < 0) fail("container init process %d is gone: %s", (int)r.init_pid, strerror(errno));
  if (!init_is_container(r.init_pid, r.container_id)) fail("process %d is not the container's init", (int)r.init_pid);
  int ns_fds[MAX_NS], ns_flags[MAX_NS];
  for (int i = 0; i < r.n_ns; i++) {
    char path[64];
    ns_flags[i] = ns_flag(r.ns[i]);
    if (ns_flags[i] < 0) fail("unknown namespace %s", r.ns[i]);
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)r.init_pid, r.ns[i]);
    ns_fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (ns_fds[i] < 0) fail("failed to open %s: %s", path, strerror(errno));
  }
  int tasks_fds[MAX_CGROUPS];
  for (int i = 0; i < r.n_cgroups; i++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tasks", r.cgroups[i]);
    tasks_fds[i] = open(path, O_WRONLY | O_CLOEXEC);
    if (tasks_fds[i] < 0) fail("error adding pid to cgroups: failed to open %s: %s", path, strerror(errno));
  }
  int cg2_fd = -1;
  if (r.cgroup2) {
    cg2_fd = open(r.cgroup2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg2_fd < 0) fail("error adding pid to cgroups: failed to open %s: %s", r.cgroup2, strerror(errno));
  }
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) fail("container init process %d is gone", (int)r.init_pid);
  close(pidfd);

  for (int i = 0; i < r.n_ns; i++) {
    if (setns(ns_fds[i], ns_flags[i]) < 0) fail("failed to setns into %s namespace: %s", r.ns[i], strerror(errno));
    close(ns_fds[i]);
  }

  int sync_pipe[2], err_pipe[2];
  if (pipe2(sync_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));

  /* Signals that arrive before the child exists wait until we can forward them. */
  sigset_t fwd, old;
  sigemptyset(&fwd);
  for (size_t i = 0; i < N_FORWARDED; i++) sigaddset(&fwd, forwarded[i]);
  sigprocmask(SIG_BLOCK, &fwd, &old);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_signal;
  sa.sa_flags = SA_RESTART;
  for (size_t i = 0; i < N_FORWARDED; i++) sigaction(forwarded[i], &sa, NULL);

  /* Born in the init's cgroup v2 cgroup: no migration, so no global lock. When
   * the kernel refuses (no clone3, a cgroup namespace in the way), fork and
   * write the pid into cgroup.procs as runc does. */
  pid_t pid = -1;
  int placed = cg2_fd < 0;
  if (cg2_fd >= 0) {
    struct clone_args_v2 args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_INTO_CGROUP_FLAG;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cg2_fd;
    pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    if (pid >= 0) placed = 1;
  }
  if (pid < 0) pid = fork();
  if (pid < 0) fail("fork: %s", strerror(errno));
  if (pid == 0) {
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < N_FORWARDED; i++) sigaction(forwarded[i], &sa, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(sync_pipe[1]);
    close(err_pipe[0]);
    if (cg2_fd >= 0) close(cg2_fd);
    close(CTL_FD);
    err_fd = err_pipe[1];
    child(&r, sync_pipe[0], tasks_fds);
    _exit(127);
  }
  child_pid = pid;
  /* a child that failed early is no reason to die writing to it */
  signal(SIGPIPE, SIG_IGN);
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(sync_pipe[0]);
  close(err_pipe[1]);

  for (int i = 0; i < r.n_cgroups; i++) close(tasks_fds[i]);
  if (!placed) {
    /* As runc exec's parent: the child's host pid into the init's v2 cgroup. */
    char path[PATH_MAX], pidstr[32];
    int pidlen = snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
    int fd = openat(cg2_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    int tries = 0, err = 0;
    while (fd < 0 || write(fd, pidstr, (size_t)pidlen) < 0) {
      err = errno;
      /* EINVAL: the task may still be in TASK_NEW; runc retries too */
      if (fd >= 0 && err == EINVAL && ++tries < 5) {
        usleep(30000);
        continue;
      }
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      snprintf(path, sizeof path, "%s/cgroup.procs", r.cgroup2);
      fail("error adding pid %d to cgroups: failed to write %d into %s: %s", (int)pid, (int)pid, path, strerror(err));
    }
    close(fd);
  }
  if (cg2_fd >= 0) close(cg2_fd);
  /* A failed write means the child is gone: its message, if any, is on err_pipe. */
  ssize_t released = write(sync_pipe[1], "1", 1);
  (void)released;
  close(sync_pipe[1]);

  /* EOF without a message: execve succeeded (the pipe is close-on-exec). */
  char msg[4096];
  size_t mlen = 0;
  for (;;) {
    ssize_t n = read(err_pipe[0], msg + mlen, sizeof msg - 1 - mlen);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    mlen += (size_t)n;
    if (mlen == sizeof msg - 1) break;
  }
  msg[mlen] = '\0';
  close(err_pipe[0]);

  int status = 0;
  if (mlen > 0) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    report("error exec failed: %s", msg);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
  }
  report("pid %d", (int)pid);
  close(CTL_FD);
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) _exit(255);
  }
  if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
  _exit(WEXITSTATUS(status));
}
