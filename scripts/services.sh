#!/usr/bin/env bash
# Makes sure the services the test suite talks to answer: Redis on 127.0.0.1:6379 and a STOMP
# broker (RabbitMQ's STOMP plugin) on 127.0.0.1:61613. Idempotent.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "$name did not answer on 127.0.0.1:$port" >&2
  return 1
}

if ! port_open 6379; then
  echo "Starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_port 6379 Redis

if ! port_open 61613; then
  if ! port_open 5672; then
    echo "Starting RabbitMQ"
    rabbitmq-server -detached
    wait_port 5672 RabbitMQ
  fi
  echo "Enabling RabbitMQ's STOMP plugin"
  rabbitmq-plugins enable rabbitmq_stomp >/dev/null
fi
wait_port 61613 "RabbitMQ STOMP"
echo "Redis and STOMP broker are up"
