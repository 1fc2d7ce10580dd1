#!/bin/bash
# Lint one man page: groff with every warning on must print nothing.
set -u
out=$(groff -man -ww -z -Tutf8 "$1" 2>&1)
if [ -n "$out" ]; then
  echo "$out"
  exit 1
fi
