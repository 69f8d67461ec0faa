/*
 * Users (see sdemo_users.h): user and group files cached per process, and
 * the credential checks.
 *
 * Each file is read once and re-read when its size, time or inode
 * changes (checked at most once a second). Lookups copy what they need
 * into the request pool under a read lock, so a reload may free the old
 * contents at once.
 *
 * Timing: a failed login must not tell a known name from an unknown one,
 * whatever the costs in the file. Every failure therefore takes at least
 * as long as one bcrypt check at the file's highest cost: an unknown name
 * is checked against a dummy hash of that cost, and a known name with a
 * cheaper hash waits out the difference. The dummy hashes are made once
 * per cost and per process, outside every lock.
 */

#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include "apr_thread_rwlock.h"
#include "apr_md5.h"

#include "sdemo_users.h"
#include "sd_id.h"
#include "sd_passwd.h"
#include "sd_sha256.h"

#define RECHECK 1                     /* seconds between stat()s */
#define DEFAULT_COST 12               /* dummy cost without a user file */

typedef struct {
    apr_pool_t *pool;                 /* holds the parsed contents */
    apr_hash_t *map;                  /* users: sd_user_t *; groups: role */
    int max_cost;                     /* users: highest accepted cost */
    apr_time_t mtime;                 /* of the file when read */
    apr_off_t size;
    apr_ino_t inode;
    apr_time_t checked;               /* last stat() */
    int exists;                       /* the last read found a file */
} sdemo_file;

static apr_hash_t *files;             /* path -> sdemo_file */
static apr_pool_t *files_pool;
static apr_thread_rwlock_t *files_lock;

/* Dummy hashes and the time one check at their cost takes, by cost. */
static struct {
    const char *hash;
    apr_interval_time_t usec;
} dummies[SD_BCRYPT_MAX_COST + 1];
static apr_thread_mutex_t *dummy_lock;
static apr_pool_t *dummy_pool;

/* ---------------------------------------------------------------------
 * Dummy hashes
 * --------------------------------------------------------------------- */

/* A bcrypt hash of a random password at @a cost, made on first use and
 * kept; *usec gets how long making it took (one bcrypt run at that cost,
 * which is what a check costs). */
static const char *dummy_for(int cost, apr_interval_time_t *usec)
{
    unsigned char pw[16], salt[16];
    char out[64], pwtext[40];
    const char *h;
    apr_time_t t0;

    if (cost < SD_BCRYPT_MIN_COST || cost > SD_BCRYPT_MAX_COST)
        cost = DEFAULT_COST;
    apr_thread_mutex_lock(dummy_lock);
    h = dummies[cost].hash;
    *usec = dummies[cost].usec;
    apr_thread_mutex_unlock(dummy_lock);
    if (h)
        return h;

    /* Made outside the lock: two threads may both make one, and one of
     * them is kept. A failing random source leaves a hash nobody can
     * match all the same (the salt and password are then whatever the
     * buffers held, but no request can know them). */
    if (apr_generate_random_bytes(pw, sizeof(pw)) != APR_SUCCESS ||
        apr_generate_random_bytes(salt, sizeof(salt)) != APR_SUCCESS)
        memset(salt, 0x5a, sizeof(salt));
    sd_b64url_encode(pw, sizeof(pw), pwtext);
    t0 = apr_time_now();
    if (apr_bcrypt_encode(pwtext, (unsigned)cost, salt, sizeof(salt), out,
                          sizeof(out)) != APR_SUCCESS)
        return NULL;
    apr_thread_mutex_lock(dummy_lock);
    if (!dummies[cost].hash) {
        dummies[cost].hash = apr_pstrdup(dummy_pool, out);
        dummies[cost].usec = apr_time_now() - t0;
    }
    h = dummies[cost].hash;
    *usec = dummies[cost].usec;
    apr_thread_mutex_unlock(dummy_lock);
    return h;
}

/* Follow how long a check at @a cost takes (a moving average), so that
 * the wait of cheaper failures keeps up with the load. */
static void dummy_observe(int cost, apr_interval_time_t usec)
{
    if (cost < SD_BCRYPT_MIN_COST || cost > SD_BCRYPT_MAX_COST)
        cost = DEFAULT_COST;
    apr_thread_mutex_lock(dummy_lock);
    if (dummies[cost].hash)
        dummies[cost].usec = (dummies[cost].usec * 7 + usec) / 8;
    apr_thread_mutex_unlock(dummy_lock);
}

static int hash_cost(const char *h)
{
    if (h && strlen(h) > 7 && h[0] == '$' && h[1] == '2' && h[3] == '$' &&
        apr_isdigit(h[4]) && apr_isdigit(h[5]))
        return (h[4] - '0') * 10 + (h[5] - '0');
    return 0;
}

/* ---------------------------------------------------------------------
 * The file cache
 * --------------------------------------------------------------------- */

/* Read @a path into @a f if it changed. Caller holds files_lock for
 * writing. */
static void file_refresh(server_rec *s, sdemo_file *f, const char *path,
                         int is_users, apr_time_t now)
{
    apr_finfo_t fi;
    apr_file_t *fp;
    apr_pool_t *np;
    apr_size_t len;
    char *text;
    apr_status_t rv;
    int bad = 0;

    if (f->checked && now - f->checked < apr_time_from_sec(RECHECK))
        return;
    f->checked = now;
    rv = apr_stat(&fi, path, APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_INODE,
                  files_pool);
    if (rv == APR_SUCCESS && f->exists && fi.mtime == f->mtime &&
        fi.size == f->size && fi.inode == f->inode)
        return;
    apr_pool_create(&np, files_pool);
    if (rv != APR_SUCCESS || fi.size > 64 * 1024 * 1024 ||
        apr_file_open(&fp, path, APR_FOPEN_READ, 0, np) != APR_SUCCESS) {
        /* A missing file means no users, not the old users: deleting the
         * file must lock everyone out, guests included (nobody can tell
         * whether a name is a real user's). */
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "SDEMO00010: cannot read %s file %s; nobody can log in "
                     "with it until it is readable",
                     is_users ? "user" : "group", path);
        if (f->pool)
            apr_pool_destroy(f->pool);
        f->pool = np;
        f->map = apr_hash_make(np);
        f->exists = 0;
        f->max_cost = 0;
        return;
    }
    len = (apr_size_t)fi.size;
    text = apr_palloc(np, len + 1);
    rv = apr_file_read_full(fp, text, len, &len);
    apr_file_close(fp);
    text[len] = '\0';
    f->max_cost = 0;
    if (is_users) {
        apr_hash_index_t *hi;
        sd_users_parse(np, text, len, &f->map, &bad);
        if (bad)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "SDEMO00011: %s line %d is not 'user:hash'; it is "
                         "ignored",
                         path, bad);
        for (hi = apr_hash_first(NULL, f->map); hi; hi = apr_hash_next(hi)) {
            const sd_user_t *u = apr_hash_this_val(hi);
            if (!u->weak && hash_cost(u->hash) > f->max_cost)
                f->max_cost = hash_cost(u->hash);
        }
    }
    else {
        sd_groups_parse(np, text, len, &f->map);
    }
    if (f->pool)
        apr_pool_destroy(f->pool);
    f->pool = np;
    f->mtime = fi.mtime;
    f->size = fi.size;
    f->inode = fi.inode;
    f->exists = 1;
}

/* The cached file @a path, locked: for reading when it was checked less
 * than a second ago (every thread at once), else for writing while it is
 * checked and perhaps re-read. The caller unlocks files_lock. */
static sdemo_file *file_lock(server_rec *s, const char *path, int is_users,
                             apr_time_t now)
{
    sdemo_file *f;

    apr_thread_rwlock_rdlock(files_lock);
    f = apr_hash_get(files, path, APR_HASH_KEY_STRING);
    if (f && f->checked && now - f->checked < apr_time_from_sec(RECHECK))
        return f;
    apr_thread_rwlock_unlock(files_lock);
    apr_thread_rwlock_wrlock(files_lock);
    f = apr_hash_get(files, path, APR_HASH_KEY_STRING);
    if (!f) {
        f = apr_pcalloc(files_pool, sizeof(*f));
        apr_hash_set(files, apr_pstrdup(files_pool, path), APR_HASH_KEY_STRING,
                     f);
    }
    file_refresh(s, f, path, is_users, now);
    return f;
}

typedef struct {
    sd_user_t *user;                  /* a copy, or NULL: not in the file */
    int readable;                     /* the file could be read */
    int max_cost;                     /* its highest accepted cost */
} user_found;

static user_found user_lookup(request_rec *r, const char *path,
                              const char *name)
{
    user_found out = {NULL, 0, 0};
    const sd_user_t *u;
    sdemo_file *f = file_lock(r->server, path, 1, r->request_time);

    out.readable = f->exists;
    out.max_cost = f->max_cost;
    u = apr_hash_get(f->map, name, APR_HASH_KEY_STRING);
    if (u) {
        out.user = apr_palloc(r->pool, sizeof(*out.user));
        out.user->user = apr_pstrdup(r->pool, u->user);
        out.user->hash = apr_pstrdup(r->pool, u->hash);
        out.user->weak = u->weak ? apr_pstrdup(r->pool, u->weak) : NULL;
    }
    apr_thread_rwlock_unlock(files_lock);
    return out;
}

/* The group file's role for @a user, or NULL when it does not name them. */
static const char *group_of(request_rec *r, const sdemo_dir_cfg *d,
                            const char *user)
{
    const char *role = NULL;
    sdemo_file *f;

    if (!d->group_file)
        return NULL;
    f = file_lock(r->server, d->group_file, 0, r->request_time);
    role = apr_hash_get(f->map, user, APR_HASH_KEY_STRING);
    role = role ? apr_pstrdup(r->pool, role) : NULL;
    apr_thread_rwlock_unlock(files_lock);
    return role;
}

/* ---------------------------------------------------------------------
 * Credentials
 * --------------------------------------------------------------------- */

/* What ties a session to the credential it was created with: the user's
 * hash, or the guest password. If either changes, the session ends. */
static apr_uint64_t cred_stamp(const char *hash)
{
    return sd_hash64(hash, strlen(hash));
}

const char *sdemo_realm(request_rec *r)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    if (d->user_file)
        return d->user_file;
    return apr_pstrcat(r->pool, "guests@", r->server->server_hostname, NULL);
}

int sdemo_check_credentials(request_rec *r, const char *user,
                            const char *password, const char **role,
                            apr_uint64_t *stamp)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    apr_time_t t0 = apr_time_now();
    apr_interval_time_t slowest;
    user_found found = {NULL, 1, 0};
    const char *dummy, *group = NULL;
    int ok = 0, valid = sd_username_valid(user, strlen(user));

    if (valid && d->user_file) {
        found = user_lookup(r, d->user_file, user);
        if (!found.readable) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SDEMO00013: login of user \"%s\" refused: the "
                          "user file %s cannot be read; no one can log in "
                          "until it is readable",
                          sd_log_name(r->pool, user), d->user_file);
            valid = 0;
        }
    }
    if (valid)
        group = group_of(r, d, user);
    dummy = dummy_for(found.max_cost ? found.max_cost : DEFAULT_COST,
                      &slowest);

    if (!valid) {
        /* A name nobody can have: the same bcrypt time all the same. */
        sd_password_check(NULL, password, dummy);
    }
    else if (found.user) {
        ok = sd_password_check(found.user, password, dummy) == APR_SUCCESS;
        if (ok) {
            *role = group ? group : "user";
            *stamp = cred_stamp(found.user->hash);
        }
    }
    else if (d->guest_password && !group) {
        /* Demo mode, for names that neither file knows: a name in the
         * group file is a real user's, even when the user file lost it,
         * and never becomes a guest. The bcrypt run keeps the time equal
         * to a real check. */
        size_t plen = strlen(password), glen = strlen(d->guest_password);
        sd_password_check(NULL, password, dummy);
        ok = plen == glen &&
             sd_ct_equal(password, d->guest_password, glen) &&
             plen <= SD_PASSWORD_MAX;
        if (ok) {
            *role = SDEMO_GUEST_ROLE;
            *stamp = d->guest_stamp;
        }
    }
    else {
        sd_password_check(NULL, password, dummy);
    }

    if (ok && strlen(*role) > SD_ROLE_MAX) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SDEMO00014: login of user \"%s\" refused: their "
                      "group name in %s is longer than %d bytes; shorten it",
                      sd_log_name(r->pool, user), d->group_file,
                      SD_ROLE_MAX);
        ok = 0;
    }
    if (!ok) {
        apr_interval_time_t spent = apr_time_now() - t0;
        if (!found.user || found.max_cost <= hash_cost(found.user->hash))
            /* This failure ran a check at the highest cost: it says how
             * long one takes now, under the machine's current load. */
            dummy_observe(found.max_cost ? found.max_cost : DEFAULT_COST,
                          spent);
        else if (spent < slowest)
            /* A cheaper hash: wait out the difference, so it does not
             * answer faster than the file's slowest user. */
            apr_sleep(slowest - spent);
    }
    return ok;
}

const char *sdemo_cred_still_valid(request_rec *r, const sd_session_t *s)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    user_found found = {NULL, 1, 0};
    const char *group;

    if (d->user_file) {
        found = user_lookup(r, d->user_file, s->user);
        if (!found.readable)
            return "the user file cannot be read";
    }
    group = group_of(r, d, s->user);
    if (found.user) {
        if (found.user->weak)
            return "the user's password entry is no longer accepted";
        if (cred_stamp(found.user->hash) != s->cred_stamp)
            return "the user's password changed";
        if (strcmp(group ? group : "user", s->role) != 0)
            return "the user's role changed";
        return NULL;
    }
    if (d->guest_password && !group && s->cred_stamp == d->guest_stamp &&
        strcmp(s->role, SDEMO_GUEST_ROLE) == 0)
        return NULL;
    if (d->guest_password && strcmp(s->role, SDEMO_GUEST_ROLE) == 0)
        return group ? "the name now belongs to a user in the group file"
                     : "the user is no longer a guest with this password";
    return "the user no longer exists";
}

/* ---------------------------------------------------------------------
 * Set-up
 * --------------------------------------------------------------------- */

static void warn_weak_users(server_rec *s)
{
    apr_array_header_t *paths = sdemo_user_files();
    apr_interval_time_t usec;
    int i, j, cost;

    dummy_for(DEFAULT_COST, &usec);

    if (!paths)
        return;
    for (i = 0; i < paths->nelts; i++) {
        const char *path = APR_ARRAY_IDX(paths, i, const char *);
        apr_hash_index_t *hi;
        sdemo_file *f;

        for (j = 0; j < i; j++)
            if (strcmp(path, APR_ARRAY_IDX(paths, j, const char *)) == 0)
                break;
        if (j < i)
            continue;
        f = file_lock(s, path, 1, apr_time_now());
        cost = f->max_cost;
        for (hi = apr_hash_first(NULL, f->map); hi; hi = apr_hash_next(hi)) {
            const sd_user_t *u = apr_hash_this_val(hi);
            if (u->weak)
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "SDEMO00012: user \"%s\" in %s cannot log in: "
                             "the entry is %s; only bcrypt of cost 10 to 15 "
                             "is accepted. Fix: htpasswd -B -C 12 %s %s",
                             sd_log_name(s->process->pool, u->user), path,
                             u->weak, path,
                             sd_log_name(s->process->pool, u->user));
        }
        apr_thread_rwlock_unlock(files_lock);
        /* Made here, in the parent, so no child's first failed login
         * pays for making it. */
        dummy_for(cost, &usec);
    }
}

void sdemo_users_init(apr_pool_t *pconf, server_rec *s)
{
    apr_pool_create(&files_pool, pconf);
    files = apr_hash_make(files_pool);
    apr_thread_rwlock_create(&files_lock, pconf);
    apr_pool_create(&dummy_pool, pconf);
    apr_thread_mutex_create(&dummy_lock, APR_THREAD_MUTEX_DEFAULT, pconf);
    memset(dummies, 0, sizeof(dummies));
    warn_weak_users(s);
}
