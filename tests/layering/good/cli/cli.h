#pragma once
#include "agents/agents.h"
