#include "agents/supervisor/supervisor.h"
#include "agents/store/store.h"
