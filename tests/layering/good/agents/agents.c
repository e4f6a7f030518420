#include "agents/agents.h"
#include "agents/supervisor/supervisor.h"
#include "agents/tools.h"
