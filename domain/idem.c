/*
 * idem.c -- the idempotent run (contract and story: idem.h). Pure
 * orchestration over struct idem_repo: begin (claim the key) -> op ->
 * render -> finish (store + COMMIT) or abort (ROLLBACK).
 */
#include "domain/idem.h"
#include "common/of.h"

#include <string.h>

struct idem_run {
    struct of_mem     *m;
    struct idem_repo   repo;
    struct idem_spec   spec;
    struct repo_tx    *tx;
    bool               has_key;
    struct idem_answer ans;
};

bool
idem_storable(int status)
{
    return (status >= 200 && status < 300) || status == 409;
}

static void
answer(struct idem_run *run)
{
    run->spec.done(run->spec.arg, &run->ans);
}

static void
on_finished(int rc, void *arg)
{
    struct idem_run *run = arg;
    if (rc != OF_OK) {
        run->ans.rc = rc == OF_UNAVAILABLE ? OF_UNAVAILABLE : OF_ERR;
        run->ans.status = 0;
        run->ans.body = NULL;
    }
    answer(run);
}

void
idem_op_done(struct idem_run *run, int rc, const void *result)
{
    const char *body = NULL;
    int status = run->spec.render(run->spec.arg, rc, result, &body);

    run->ans.rc = OF_OK;
    run->ans.status = status;
    run->ans.body = body;
    run->ans.replayed = false;
    struct repo_tx *tx = run->tx;
    run->tx = NULL;
    if (!idem_storable(status) || body == NULL) {
        run->repo.ops->abort(run->repo.self, tx);
        answer(run);
        return;
    }
    run->repo.ops->finish(run->repo.self, run->m, tx, run->has_key ? run->spec.key : NULL,
                          status, body, on_finished, run);
}

static void
on_begun(int rc, enum idem_begin what, struct repo_tx *tx, const struct idem_row *row, void *arg)
{
    struct idem_run *run = arg;

    if (rc != OF_OK) {
        run->ans.rc = rc == OF_UNAVAILABLE ? OF_UNAVAILABLE : OF_ERR;
        answer(run);
        return;
    }
    if (what == IDEM_FRESH) {
        run->tx = tx;
        run->spec.op(run, tx, run->spec.op_arg != NULL ? run->spec.op_arg : run->spec.arg);
        return;
    }
    /* the key belongs to an earlier request; the repository closed the tx */
    if (row == NULL || row->fingerprint == NULL
        || strcmp(row->fingerprint, run->spec.key->fingerprint) != 0) {
        run->ans.rc = OF_INVALID;
    } else if (row->status == 0 || row->body == NULL) {
        run->ans.rc = OF_CONFLICT;
    } else {
        run->ans.rc = OF_OK;
        run->ans.status = row->status;
        run->ans.body = row->body;
        run->ans.replayed = true;
    }
    answer(run);
}

void
idem_run(struct idem_repo repo, struct of_mem *m, const struct idem_spec *spec)
{
    struct idem_run *run = of_mem_calloc(m, sizeof(*run));
    run->m = m;
    run->repo = repo;
    run->spec = *spec;
    run->has_key = spec->key != NULL && spec->key->key != NULL;
    repo.ops->begin(repo.self, m, run->has_key ? spec->key : NULL, on_begun, run);
}
