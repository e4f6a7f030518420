#include "agents/voice/voice.h"
#include "agents/supervisor/supervisor.h"
#include "audio/pcm.h"
