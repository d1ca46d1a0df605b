# snapshot: a busy shell loop that prints its counter every 10000 rounds (the host saves
# the machine in the middle of it and restores it elsewhere), then one line read from the
# console is answered, and the guest powers off.
i=0
while [ $i -lt 200000 ]; do
    i=$((i + 1))
    [ $((i % 10000)) -eq 0 ] && echo "VMCORE-LOOP $i"
done
echo "VMCORE-LOOP-DONE"
read -r line
echo "VMCORE-ANSWER $line"
poweroff -f
