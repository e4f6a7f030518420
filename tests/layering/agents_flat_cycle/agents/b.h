#pragma once
#include "agents/a.h"
