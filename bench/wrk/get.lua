-- Plain GETs of the URL given to wrk; only the shared reporting.
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")
