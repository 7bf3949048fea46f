#!/usr/bin/env bash
# Fetch Apache Kafka (KRaft broker) and its runtime jars from Maven Central into deploy/kafka/dist/libs.
# Idempotent: a no-op when the jars are there. Uses Maven's own cache (~/.m2) for later runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
libs="$here/dist/libs"
if [ -f "$libs/.complete" ]; then exit 0; fi
command -v mvn >/dev/null || { echo "fetch.sh: Maven (mvn) and Java 17 are needed to fetch Kafka" >&2; exit 1; }
rm -rf "$libs"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime
touch "$libs/.complete"
echo "fetch.sh: $(ls "$libs" | grep -c '\.jar$') jars in $libs"
