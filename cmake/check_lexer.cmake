# check_lexer.cmake — the test lexer_pregen: regenerates frontend/lex.re
# with re2c into OUT and fails unless it equals the checked-in copy PREGEN
# (used by builds without re2c). Run with -DRE2C= -DFLAGS= -DSRC= -DPREGEN= -DOUT=.
execute_process(COMMAND ${RE2C} ${FLAGS} -o ${OUT} ${SRC} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "re2c failed (${rc}): ${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT} ${PREGEN} RESULT_VARIABLE diff)
if(NOT diff EQUAL 0)
  message(FATAL_ERROR "frontend/pregen/lex.c is not re2c's output of frontend/lex.re: "
    "run `cmake --build <build> --target lexer_pregen_update` and commit it")
endif()
message(STATUS "frontend/pregen/lex.c matches frontend/lex.re")
