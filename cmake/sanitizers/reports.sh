#!/bin/sh
# reports.sh clear|check DIR: the CTest fixture `sanitizer_reports` of the sanitizer builds
# (cmake/CybersynSanitizerReports.cmake). Integration tests write sanitizer reports, their own and
# those of the `cybersyn` processes they start, to DIR/<test binary>.<pid>; a child's report must
# fail the run even when its test kills the child and ignores how it ended.
set -eu
dir=$2
case "$1" in
  clear) rm -rf "$dir" && mkdir -p "$dir" ;;
  check)
    found=0
    for f in "$dir"/*; do
      [ -f "$f" ] || continue
      found=$((found + 1))
      echo "==== $f"
      cat "$f"
    done
    if [ "$found" -gt 0 ]; then
      echo "reports.sh: $found sanitizer report file(s) in $dir (above; <test binary>.<pid>)" >&2
      exit 1
    fi
    echo "reports.sh: no sanitizer reports in $dir"
    ;;
  *) echo "usage: reports.sh clear|check DIR" >&2; exit 2 ;;
esac
