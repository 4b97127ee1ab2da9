/* A simulated power cut for the durability tests (tests/test_storage_powercut.py), preloaded into the
 * process under test with LD_PRELOAD.
 *
 * After a power cut a disk holds what was made durable: a file's bytes as of its last fsync/fdatasync,
 * a directory's entries as of its last fsync (POSIX's minimum, the pessimistic case; a real disk may
 * also keep some later writes). This library records exactly that: each successful fsync or fdatasync
 * of a file under $POWERCUT_DIR copies the file's bytes to $POWERCUT_SHADOW/f<inode>, and of a
 * directory writes its entries ("type inode name" lines) to $POWERCUT_SHADOW/d<inode>. The test then
 * kills the process and builds the disk image from the shadow: nothing that was only written survives.
 *
 * Writes themselves are not intercepted: whatever the program wrote but did not sync is simply absent
 * from the image. A copy is taken after the real sync returns and before the caller learns of it, so a
 * caller that acknowledges after its sync finds its data in the image. One lock file serialises copies
 * across threads and processes, so an older copy never replaces a newer one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t guard = PTHREAD_MUTEX_INITIALIZER;
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static int watched(int fd, char *path, size_t size) {
    const char *dir = getenv("POWERCUT_DIR");
    char link[64];
    ssize_t n;
    size_t len;
    if (!dir || !getenv("POWERCUT_SHADOW")) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, size - 1);
    if (n < 0) return 0;
    path[n] = 0;
    len = strlen(dir);
    return strncmp(path, dir, len) == 0 && (path[len] == '/' || path[len] == 0);
}

static void copy_file(int fd, const char *shadow, ino_t ino) {
    char link[64], tmp[PATH_MAX], dest[PATH_MAX], buf[65536];
    ssize_t n;
    int in, out;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    in = open(link, O_RDONLY); /* the fd itself may be write-only */
    if (in < 0) return;
    snprintf(tmp, sizeof tmp, "%s/tmp.%d", shadow, (int)getpid());
    snprintf(dest, sizeof dest, "%s/f%lu", shadow, (unsigned long)ino);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out >= 0) {
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n) break;
        close(out);
        rename(tmp, dest);
    }
    close(in);
}

static void list_dir(int fd, const char *shadow, ino_t ino) {
    char link[64], tmp[PATH_MAX], dest[PATH_MAX];
    struct dirent *e;
    DIR *d;
    FILE *out;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    d = opendir(link);
    if (!d) return;
    snprintf(tmp, sizeof tmp, "%s/tmp.%d", shadow, (int)getpid());
    snprintf(dest, sizeof dest, "%s/d%lu", shadow, (unsigned long)ino);
    out = fopen(tmp, "w");
    if (out) {
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            fprintf(out, "%c %lu %s\n", e->d_type == DT_DIR ? 'd' : 'f', (unsigned long)e->d_ino, e->d_name);
        }
        fclose(out);
        rename(tmp, dest);
    }
    closedir(d);
}

static void record(int fd) {
    char path[PATH_MAX], lockpath[PATH_MAX];
    const char *shadow = getenv("POWERCUT_SHADOW");
    struct stat st;
    int lock;
    if (!watched(fd, path, sizeof path) || fstat(fd, &st) != 0) return;
    snprintf(lockpath, sizeof lockpath, "%s/lock", shadow);
    pthread_mutex_lock(&guard);
    lock = open(lockpath, O_WRONLY | O_CREAT, 0600);
    if (lock >= 0) flock(lock, LOCK_EX);
    if (S_ISREG(st.st_mode)) copy_file(fd, shadow, st.st_ino);
    else if (S_ISDIR(st.st_mode)) list_dir(fd, shadow, st.st_ino);
    if (lock >= 0) close(lock); /* releases the flock */
    pthread_mutex_unlock(&guard);
}

int fsync(int fd) {
    int rc;
    if (!real_fsync) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    rc = real_fsync(fd);
    if (rc == 0) record(fd);
    return rc;
}

int fdatasync(int fd) {
    int rc;
    if (!real_fdatasync) real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    rc = real_fdatasync(fd);
    if (rc == 0) record(fd);
    return rc;
}
