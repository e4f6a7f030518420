#include "agents/store/store.h"
#include "agents/voice/voice.h"
