#include "agents/voice/voice.h"
#include "agents/agents.h"
