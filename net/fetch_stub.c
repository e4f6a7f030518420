/*
 * TEMPORARY, branch `store` only: net_fetch() (net/net.h) is being written on another branch.
 * Until it lands this stub lets the service link: it refuses every request (returns 0 and posts
 * nothing, as net.h says of a malformed request), which the store logs as a webhook that could
 * not be sent. Delete this file when the real net_fetch() is merged; if both are present the
 * link fails on the duplicate symbols, so it cannot be forgotten silently.
 */
#include "net/net.h"

uint64_t net_fetch(const net_fetch_req_t *req, actor_t *target)
{
    (void)req;
    (void)target;
    return 0;
}

void net_fetch_cancel(uint64_t id)
{
    (void)id;
}
