# A local Kafka broker without Docker (deploy/kafka/broker.sh); included by the top-level Makefile.
#   make kafka-up      fetch Kafka from Maven Central once, start it on 127.0.0.1:$(KAFKA_PORT)
#   make kafka-down    stop it;  make kafka-status;  make kafka-fetch (jars only)
#   make kafka-up-sasl the same broker with a SASL_SSL listener too (127.0.0.1:$(KAFKA_PORT)+2, SCRAM-SHA-512 user
#                      careful, password and CA under $(KAFKA_SASL_LOG_DIR)); make kafka-down-sasl
KAFKA_PORT    ?= 9092
KAFKA_LOG_DIR ?= .cache/kafka
KAFKA_ENV      = PORT=$(KAFKA_PORT) LOG_DIR=$(KAFKA_LOG_DIR)
# its own folder: the SCRAM user is created when the storage is formatted
KAFKA_SASL_LOG_DIR ?= .cache/kafka-sasl
KAFKA_SASL_ENV      = CAREFUL_KAFKA_SASL_SSL=1 PORT=$(KAFKA_PORT) LOG_DIR=$(KAFKA_SASL_LOG_DIR)

.PHONY: kafka-fetch kafka-up kafka-down kafka-status kafka-up-sasl kafka-down-sasl

kafka-fetch:
	deploy/kafka/fetch.sh

kafka-up: kafka-fetch
	$(KAFKA_ENV) deploy/kafka/broker.sh start

kafka-down:
	$(KAFKA_ENV) deploy/kafka/broker.sh stop

kafka-status:
	$(KAFKA_ENV) deploy/kafka/broker.sh status

kafka-up-sasl: kafka-fetch
	$(KAFKA_SASL_ENV) deploy/kafka/broker.sh start

kafka-down-sasl:
	$(KAFKA_SASL_ENV) deploy/kafka/broker.sh stop
