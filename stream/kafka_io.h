// KafkaIo over librdkafka (common/kafka_consumer.h, common/kafka_producer.h): the clients the
// stream runtime uses in production.
//
// Thread-safety: as io.h.
#ifndef CYBERSYN_STREAM_KAFKA_IO_H_
#define CYBERSYN_STREAM_KAFKA_IO_H_

#include <memory>

#include "common/kafka_admin.h"
#include "common/kafka_error.h"
#include "stream/io.h"

namespace cybersyn::stream {

// `ensure_topics` empty: EnsureTopics(client, ...).
std::unique_ptr<KafkaIo> NewKafkaIo(KafkaClientOptions client, TopicEnsurer ensure_topics = {});

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_KAFKA_IO_H_
