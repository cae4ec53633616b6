# run_hls.tcl: C simulation, C synthesis and IP export of one top function
# with AMD Vitis HLS (`make -C hls csynth` runs it from the build folder, once
# per top: adapter_fwd and the nine adapter_bwd_* tops of adapter_bwd.cpp).
# Environment: TOP (default adapter_fwd), HLS_DIR (this folder), GOLDEN_DIR
# (tests/data/fixed), GOLDEN_BWD_DIR (tests/data/fixed_bwd), PART, CLOCK_NS
# (default 3.333 = 300 MHz).
set hls_dir [expr {[info exists ::env(HLS_DIR)] ? $::env(HLS_DIR) : [file dirname [info script]]}]
set top [expr {[info exists ::env(TOP)] ? $::env(TOP) : "adapter_fwd"}]
set golden_dir [expr {[info exists ::env(GOLDEN_DIR)] ? $::env(GOLDEN_DIR) : "$hls_dir/../tests/data/fixed"}]
set golden_bwd_dir [expr {[info exists ::env(GOLDEN_BWD_DIR)] ? $::env(GOLDEN_BWD_DIR) : "$hls_dir/../tests/data/fixed_bwd"}]
set part [expr {[info exists ::env(PART)] ? $::env(PART) : "xcu250-figd2104-2L-e"}]
set clock_ns [expr {[info exists ::env(CLOCK_NS)] ? $::env(CLOCK_NS) : 3.333}]

# The forward top and its testbench, or a backward top and the backward testbench.
if {[string match "adapter_bwd_*" $top]} {
    set src adapter_bwd.cpp
    set tb tb_adapter_bwd.cpp
    set goldens [lsort [glob $golden_bwd_dir/*.bin]]
} else {
    set src adapter_fwd.cpp
    set tb tb_adapter_fwd.cpp
    set goldens [lsort [glob $golden_dir/*.bin]]
}
set cflags "-std=c++14 -DHAVE_AP_TYPES -DHAVE_HLS_STREAM"

open_project -reset ${top}_prj
set_top $top
add_files $hls_dir/$src -cflags $cflags
add_files -tb $hls_dir/$tb -cflags $cflags
open_solution -reset sol1 -flow_target vitis
set_part $part
create_clock -period $clock_ns -name default

csim_design -argv [join $goldens " "]
csynth_design
export_design -format xo -output ${top}.xo
exit
