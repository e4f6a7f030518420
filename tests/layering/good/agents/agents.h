#pragma once
#include "agents/voice/voice.h"
