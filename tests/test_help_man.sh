#!/bin/sh
# test_help_man - the tool's help and its man page (docs/shmk.1) agree:
# every command 'shmk help' lists has an entry in the man page's SYNOPSIS
# and COMMANDS, and no other command has one there; for each command, the
# long options its --help lists are exactly those its entry in COMMANDS
# lists as items (--help itself aside: every command takes it).
#
# What counts as listed:
#   --help  a line indented by two spaces or more that begins, after an
#           optional KIND word (create's "ring    --nodes N"), with
#           --NAME; more options on the line if joined by ", " or " | "
#           ("--csv | --json").  An option named in running text is not
#           listed.
#   shmk.1  an option item (.TP, inside the command's .RS block) whose
#           line names \-\-NAME; an "Options of .B a and .BR b :" block
#           lists options of both commands.
# Usage: test_help_man.sh SHMK_BINARY SHMK_1
set -eu
tool=$1
man=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The commands of 'shmk help', one a line.
"$tool" help | awk '/^Commands:/ { on = 1; next }
	on && /^$/ { exit }
	on { print $1 }' >"$tmp/commands"
[ -s "$tmp/commands" ] || { echo "shmk help lists no commands"; exit 1; }

# "COMMAND --OPTION" for every option a --help lists.
while read -r c; do
	"$tool" "$c" --help >"$tmp/help.$c" 2>&1 ||
		{ echo "shmk $c --help failed:"; cat "$tmp/help.$c"; exit 1; }
	awk -v c="$c" '
	/^  +([a-z]+ +)?--[a-z]/ {
		s = $0
		sub(/^ +([a-z]+ +)?/, "", s)
		while (match(s, /^--[a-z][a-z-]*/)) {
			print c, substr(s, 1, RLENGTH)
			s = substr(s, RLENGTH + 1)
			sub(/^ [A-Z][A-Za-z|]*/, "", s) # the value: N, K|all
			if (s !~ /^(, | \| )--/)
				break
			sub(/^(, | \| )/, "", s)
		}
	}' "$tmp/help.$c"
done <"$tmp/commands" | grep -v ' --help$' | sort -u >"$tmp/help_opts"

# The same from the man page, and its commands ("COMMAND" lines).
awk -v out="$tmp/man_cmds" '
function unesc(s) { gsub(/\\-/, "-", s); return s }
/^\.SH/ { sect = $2; depth = 0; item = 0; next }
sect == "SYNOPSIS" && $1 == ".B" && $2 == "shmk" {
	print "synopsis", $3 >out
	next
}
sect != "COMMANDS" { next }
/^\.RS/ { depth++; next }
/^\.RE/ { depth--; next }
/^\.TP/ {
	item = 1
	if (depth == 0) # a shared block lasts until the next command
		names = ""
	next
}
# "Options of .B send and .BR recv :" names the commands of what follows.
depth == 0 && /^Options of/ { names = ""; collecting = 1; next }
collecting {
	if ($1 == ".B" || $1 == ".BR")
		names = names " " $2
	if ($0 ~ /:$/)
		collecting = 0
	next
}
item && depth == 0 {
	item = 0
	if ($1 ~ /^\.B[IR]?$/) {
		cur = $2
		print "commands", cur >out
	}
	next
}
item && depth > 0 {
	item = 0
	s = unesc($0)
	while (match(s, /--[a-z][a-z-]*/)) {
		o = substr(s, RSTART, RLENGTH)
		if (names != "") {
			n = split(names, who, " ")
			for (i = 1; i <= n; i++)
				print who[i], o
		} else {
			print cur, o
		}
		s = substr(s, RSTART + RLENGTH)
	}
	next
}
{ item = 0 }
' "$man" | sort -u >"$tmp/man_opts"

fail=0
for where in synopsis commands; do
	awk -v w="$where" '$1 == w { print $2 }' "$tmp/man_cmds" | sort -u \
		>"$tmp/man_$where"
	sort -u "$tmp/commands" >"$tmp/help_cmds"
	if ! cmp -s "$tmp/help_cmds" "$tmp/man_$where"; then
		echo "commands: 'shmk help' (<) and the $where of shmk.1 (>)" \
			"differ:"
		diff "$tmp/help_cmds" "$tmp/man_$where" | grep '^[<>]' || true
		fail=1
	fi
done
if ! cmp -s "$tmp/help_opts" "$tmp/man_opts"; then
	echo "options: 'shmk COMMAND --help' (<) and the COMMANDS of" \
		"shmk.1 (>) differ:"
	diff "$tmp/help_opts" "$tmp/man_opts" | grep '^[<>]' || true
	fail=1
fi
[ "$fail" = 0 ] || exit 1
echo "help and shmk.1 agree: $(wc -l <"$tmp/help_cmds") commands," \
	"$(wc -l <"$tmp/help_opts") options"
