#include "mailbox/msg.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

msg_t *msg_new(uint32_t type, size_t size)
{
    msg_t *m = xcalloc(1, size < sizeof(msg_t) ? sizeof(msg_t) : size);
    m->type = type;
    return m;
}

void msg_free(msg_t *m)
{
    if (m == NULL)
        return;
    if (m->free_fn)
        m->free_fn(m);
    else
        free(m);
}
