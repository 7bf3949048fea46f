# A local Kafka broker without Docker (deploy/kafka/broker.sh); included by the top-level Makefile.
#   make kafka-up      fetch Kafka from Maven Central once, start it on 127.0.0.1:$(KAFKA_PORT)
#   make kafka-down    stop it;  make kafka-status;  make kafka-fetch (jars only)
KAFKA_PORT    ?= 9092
KAFKA_LOG_DIR ?= .cache/kafka
KAFKA_ENV      = PORT=$(KAFKA_PORT) LOG_DIR=$(KAFKA_LOG_DIR)

.PHONY: kafka-fetch kafka-up kafka-down kafka-status

kafka-fetch:
	deploy/kafka/fetch.sh

kafka-up: kafka-fetch
	$(KAFKA_ENV) deploy/kafka/broker.sh start

kafka-down:
	$(KAFKA_ENV) deploy/kafka/broker.sh stop

kafka-status:
	$(KAFKA_ENV) deploy/kafka/broker.sh status
