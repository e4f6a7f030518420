#include "agents/voice/voice.h"
#include "agents/supervisor/supervisor.h"
