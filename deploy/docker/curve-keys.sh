#!/bin/sh
# Makes the CURVE keys of a Compose deployment once (compose.curve.yaml runs
# it in its keygen service, as root, before the controller starts):
#
#   curve-keys.sh CONTROLLER_DIR WORKER_DIR
#
# CONTROLLER_DIR gets controller.key + controller.key_secret (the
#   controller's pair) and clients/worker.key (the workers it admits);
# WORKER_DIR gets worker.key + worker.key_secret (the pair all the scaled
#   workers share) and controller.key (the controller's public key).
#
# Existing keys are kept, so restarts do not change them. Everything ends
# up owned by the image's user, 10001, secrets readable by it alone.
set -eu

controller_dir=${1:?usage: curve-keys.sh CONTROLLER_DIR WORKER_DIR}
worker_dir=${2:?usage: curve-keys.sh CONTROLLER_DIR WORKER_DIR}
owner=10001:10001

if [ ! -s "$controller_dir/controller.key_secret" ]; then
  shoal-keygen --force --dir "$controller_dir" controller
fi
if [ ! -s "$worker_dir/worker.key_secret" ]; then
  shoal-keygen --force --dir "$worker_dir" worker
fi
mkdir -p "$controller_dir/clients"
cp "$worker_dir/worker.key" "$controller_dir/clients/worker.key"
cp "$controller_dir/controller.key" "$worker_dir/controller.key"

chown -R "$owner" "$controller_dir" "$worker_dir"
chmod 0700 "$controller_dir" "$worker_dir"
chmod 0600 "$controller_dir/controller.key_secret" "$worker_dir/worker.key_secret"
echo "curve-keys: controller key in $controller_dir, worker key in $worker_dir"
