// The one Catch2 main for every sim/**/x_test.cpp.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
