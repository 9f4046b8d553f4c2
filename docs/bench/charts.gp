# gnuplot charts.gp (written by shmk bench, 2026-11-25 04:48 UTC)
set terminal pngcairo size 1000,640 font ',11'
set termoption noenhanced
set key outside right top autotitle columnhead
set grid
set datafile missing 'NaN'
# sixteen colours, then the same dashed
C = '#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e #8c564b #e377c2 #17becf #7f7f7f #bcbd22 #000000 #393b79 #637939 #843c39 #7b4173 #3182bd'
col(i) = word(C, (i - 2) % 16 + 1)
dash(i) = (i - 2) / 16 + 1
set output 'chart.png'
set title 'shmk ring bandwidth by node count (processes; 2026-11-25 04:48 UTC; 2 CPUs)'
set xlabel 'nodes'
set ylabel 'GB/s'
set logscale x
set xtics (2,5,10,20,50)
plot for [i=2:9] 'chart.dat' using 1:i with linespoints lw 2 lc rgb col(i) dt dash(i)
unset logscale
unset xtics
set xtics
set output 'peers.png'
set title 'Throughput by message size, one sender and one receiver process (2026-11-25 04:48 UTC)'
set xlabel 'message size (bytes)'
set ylabel 'GB/s'
set logscale xy
set format y '%g'
set xtics ("64 B" 64, "1 KiB" 1024, "64 KiB" 65536, "256 KiB" 262144, "1 MiB" 1048576)
plot for [i=2:15] 'peers.dat' using 1:i with linespoints lw 2 lc rgb col(i) dt dash(i)
unset logscale
set xtics autofreq
set format x '%g'
set output 'latency.png'
set title '64-byte round trip: distribution (2026-11-25 04:48 UTC)'
set xlabel 'round trip (microseconds)'
set ylabel 'fraction of round trips at most x'
set logscale x
set key right bottom inside
plot for [i=2:15] 'latency.dat' using i:1 with lines lw 2 lc rgb col(i) dt dash(i) title columnhead(i)
