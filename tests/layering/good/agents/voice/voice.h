#pragma once
#include "net/net.h"
