#include "agents/voice/voice.h"
