# Local Kafka broker for users without Docker (included by the top-level Makefile).
.PHONY: kafka-fetch kafka-up kafka-down
kafka-fetch:
	deploy/kafka/fetch.sh
kafka-up:
	PORT=9092 LOG_DIR=.cache/kafka deploy/kafka/broker.sh start
kafka-down:
	PORT=9092 LOG_DIR=.cache/kafka deploy/kafka/broker.sh stop
