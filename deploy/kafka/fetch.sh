#!/usr/bin/env bash
# Fetch the Apache Kafka broker and its runtime jars from Maven Central into deploy/kafka/dist/libs.
#   fetch.sh            no-op when dist/libs was fetched from the current pom.xml; re-fetches when it changed
# Needs Java 17 and Maven. Maven's own cache (~/.m2) makes a second fetch on the same machine fast;
# MAVEN_OPTS=-Dmaven.repo.local=DIR points it elsewhere (e.g. an empty folder to time a fresh machine).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
libs="$here/dist/libs"
stamp="$libs/.fetched-from"
want="$( (sha256sum "$here/pom.xml" 2>/dev/null || shasum -a 256 "$here/pom.xml") | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
for tool in mvn java; do
  command -v "$tool" >/dev/null || { echo "fetch.sh: '$tool' not found: Kafka needs Java 17+ and Maven to fetch it" >&2; exit 1; }
done

# One fetch at a time (parallel test sessions); copy into a private folder and swap it in, so an
# interrupted fetch never leaves a half-filled dist/libs that looks complete.
mkdir -p "$here/dist"
if command -v flock >/dev/null; then
  exec 9>"$here/dist/.fetch.lock"
  flock 9
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
fi
tmp="$(mktemp -d "$here/dist/libs.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; exit 1; }
rm -f "$tmp/mvn.log"
ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { echo "fetch.sh: Maven copied no kafka_2.13 jar into $tmp" >&2; exit 1; }
echo "$want" > "$tmp/.fetched-from"
rm -rf "$libs.old"
[ -d "$libs" ] && mv "$libs" "$libs.old"
mv "$tmp" "$libs"
rm -rf "$libs.old"
echo "fetch.sh: $(ls "$libs" | grep -c '\.jar$') jars ($(du -sh "$libs" | cut -f1)) in $libs"
