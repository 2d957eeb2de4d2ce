#!/bin/sh
# version.sh DESCRIBE [DATE]: the Debian version of a build whose
# `git describe --tags --always --dirty` is DESCRIBE. Debian versions must
# start with a digit and must sort in the order the builds were made, so:
#
#   v1.2.3                  1.2.3
#   v1.2.3-rc1              1.2.3~rc1                 (before 1.2.3)
#   v1.2.3-4-gabc1234       1.2.3+git4.abc1234        (4 commits after v1.2.3)
#   abc1234 (no tag yet)    0.0~gitDATE.abc1234       (DATE: the commit's, UTC,
#                                                      YYYYMMDDhhmmss, if given)
#   ...-dirty               ...+dirty                 (uncommitted changes)
#   dev (no git)            0.0~dev
#
# A hyphen would make dpkg read the rest as a Debian revision, so none is
# left. 0.0~ sorts before any tagged release.
set -eu
describe=${1:?usage: version.sh DESCRIBE [DATE]}
date=${2:-}
v=${describe#v}
dirty=
case $v in
*-dirty)
	v=${v%-dirty}
	dirty=+dirty
	;;
esac
if printf '%s\n' "$v" | grep -Eq '^[0-9a-f]{7,40}$'; then
	v="0.0~git${date:+$date.}$v"
else
	v=$(printf '%s\n' "$v" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/; s/-/~/g')
fi
case $v in
[0-9]*) ;;
*) v="0.0~$v" ;;
esac
v=$v$dirty
if ! printf '%s\n' "$v" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$'; then
	echo "version.sh: cannot make a Debian version of '$describe' (got '$v')" >&2
	exit 1
fi
printf '%s\n' "$v"
