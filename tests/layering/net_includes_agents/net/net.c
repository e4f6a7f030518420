#include "base/util.h"
#include "agents/agents.h"
