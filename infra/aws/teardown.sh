#!/usr/bin/env bash
# Remove a stage deployed by infra/aws/deploy.sh: the Chalice app, then the
# infrastructure stack (the catalog cluster leaves a final snapshot).
#   infra/aws/teardown.sh STAGE
set -euo pipefail
stage=${1:?usage: infra/aws/teardown.sh STAGE}
cd "$(dirname "$0")/../.."
.venv/bin/chalice delete --stage "$stage"
aws cloudformation delete-stack --stack-name "zaqar-$stage"
aws cloudformation wait stack-delete-complete --stack-name "zaqar-$stage"
echo "stage $stage removed"
