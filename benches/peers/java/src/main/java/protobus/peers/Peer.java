package protobus.peers;

import com.google.protobuf.CodedOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import shop.orders.v1.Orders.OrderPlaced;

/**
 * The Java peer of the bench: Apache Kafka's own producer and consumer with
 * classes generated from the exported contract, tuned as Kafka's
 * documentation recommends for throughput. Events are framed in Confluent's
 * wire format with a cached schema id and carry Protobus's headers.
 *
 * <pre>
 * java -cp … protobus.peers.Peer produce --bootstrap 127.0.0.1:9092 --topic T --count 50000 --size 1024 --schema-id 1
 * java -cp … protobus.peers.Peer consume --bootstrap 127.0.0.1:9092 --topic T --count 50000
 * </pre>
 *
 * Each run prints one JSON line: {"client":…,"events":…,"seconds":…,"rate":…,
 * "cpu_us":…,"machine_cpu_us":…}, the last two the CPU time per event of this
 * process and of the whole machine (the broker included) over the timed
 * events.
 */
public final class Peer {
  private Peer() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> o = new HashMap<>();
    for (int i = 1; i + 1 < args.length; i += 2) {
      o.put(args[i].replaceFirst("^--?", ""), args[i + 1]);
    }
    String bootstrap = o.getOrDefault("bootstrap", "127.0.0.1:9092");
    String topic = o.get("topic");
    int count = Integer.parseInt(o.getOrDefault("count", "50000"));
    Timed run;
    int events;
    switch (args[0]) {
      case "produce" -> {
        int size = Integer.parseInt(o.getOrDefault("size", "100"));
        int warmup = Integer.parseInt(o.getOrDefault("warmup", "1000"));
        int schemaId = Integer.parseInt(o.getOrDefault("schema-id", "1"));
        run = produce(bootstrap, topic, count, size, warmup, schemaId);
        events = count;
      }
      case "consume" -> {
        run = consume(bootstrap, topic, count);
        // From the first record to the last, as the Rust side measures.
        events = count - 1;
      }
      default -> throw new IllegalArgumentException("unknown command " + args[0]);
    }
    System.out.printf(
        "{\"client\":\"java\",\"events\":%d,\"seconds\":%f,\"rate\":%f,"
            + "\"cpu_us\":%f,\"machine_cpu_us\":%f}%n",
        events,
        run.seconds(),
        events / run.seconds(),
        run.spent().process() * 1e6 / events,
        run.spent().machine() * 1e6 / events);
  }

  /** A timed run: its wall-clock seconds and the CPU time it took. */
  record Timed(double seconds, Cpu spent) {}

  /**
   * CPU time, in seconds, of this process (every thread: the JIT's and the
   * collector's too) and of the whole machine.
   */
  record Cpu(double process, double machine) {
    static Cpu now() throws java.io.IOException {
      var os =
          (com.sun.management.OperatingSystemMXBean)
              java.lang.management.ManagementFactory.getOperatingSystemMXBean();
      return new Cpu(os.getProcessCpuTime() / 1e9, machineBusy());
    }

    Cpu minus(Cpu before) {
      return new Cpu(process - before.process, machine - before.machine);
    }

    /**
     * /proc/stat's first line ({@code cpu user nice system idle iowait irq
     * softirq steal …}, in 100ths of a second): every state but idle and
     * waiting for I/O, as the Rust side counts.
     */
    static double machineBusy() throws java.io.IOException {
      String line = java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/stat")).get(0);
      String[] fields = line.trim().split("\\s+");
      double busy = 0;
      for (int i = 1; i < fields.length && i <= 8; i++) {
        if (i != 4 && i != 5) {
          busy += Double.parseDouble(fields[i]);
        }
      }
      return busy / 100;
    }
  }

  /** The i-th event of `size` encoded bytes, as the Rust side builds it. */
  static OrderPlaced event(int i, int size) {
    OrderPlaced.Builder order =
        OrderPlaced.newBuilder()
            .setOrderId(String.format("order-%08d", i))
            .setCustomerId("customer-" + (i % 100));
    int pad = size - (order.build().getSerializedSize() + 3);
    if (pad > 0) {
      order.setCouponCode("x".repeat(pad));
    }
    return order.build();
  }

  /** Confluent's frame: magic byte, schema id, message indexes ([0]), payload. */
  static byte[] frame(int schemaId, OrderPlaced order) throws java.io.IOException {
    int size = order.getSerializedSize();
    byte[] out = new byte[6 + size];
    ByteBuffer.wrap(out, 1, 4).putInt(schemaId);
    CodedOutputStream payload = CodedOutputStream.newInstance(out, 6, size);
    order.writeTo(payload);
    payload.checkNoSpaceLeft();
    return out;
  }

  static ProducerRecord<byte[], byte[]> record(String topic, int schemaId, OrderPlaced order, int i)
      throws java.io.IOException {
    ProducerRecord<byte[], byte[]> record =
        new ProducerRecord<>(
            topic, order.getOrderId().getBytes(StandardCharsets.UTF_8), frame(schemaId, order));
    record.headers().add(new RecordHeader("protobus-event-id", bytes("java-" + i)));
    record.headers().add(new RecordHeader("protobus-event-type", bytes("shop.orders.v1.OrderPlaced")));
    return record;
  }

  static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  /**
   * Sends `warmup` events (the JIT and the connections warm up), then times
   * `count` more until every one is acknowledged: idempotent, acks=all, linger
   * 5 ms, no compression, batches of up to 1 MiB (librdkafka's default, where
   * Kafka's documentation says larger batches mean throughput).
   */
  static Timed produce(String bootstrap, String topic, int count, int size, int warmup, int schemaId)
      throws Exception {
    Properties settings = new Properties();
    settings.put("bootstrap.servers", bootstrap);
    settings.put("acks", "all");
    settings.put("enable.idempotence", "true");
    settings.put("linger.ms", "5");
    settings.put("compression.type", "none");
    settings.put("batch.size", Integer.toString(1 << 20));
    settings.put("buffer.memory", Long.toString(256L << 20));
    settings.put("key.serializer", ByteArraySerializer.class.getName());
    settings.put("value.serializer", ByteArraySerializer.class.getName());
    AtomicReference<Exception> failure = new AtomicReference<>();
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(settings)) {
      for (int i = 0; i < warmup; i++) {
        producer.send(record(topic, schemaId, event(i, size), i), (m, e) -> note(failure, e));
      }
      producer.flush();
      OrderPlaced[] orders = new OrderPlaced[count];
      for (int i = 0; i < count; i++) {
        orders[i] = event(i, size);
      }
      Cpu before = Cpu.now();
      long start = System.nanoTime();
      for (int i = 0; i < count; i++) {
        producer.send(
            record(topic, schemaId, orders[i], warmup + i), (m, e) -> note(failure, e));
      }
      producer.flush();
      long elapsed = System.nanoTime() - start;
      Cpu spent = Cpu.now().minus(before);
      if (failure.get() != null) {
        throw failure.get();
      }
      return new Timed(elapsed / 1e9, spent);
    }
  }

  static void note(AtomicReference<Exception> failure, Exception e) {
    if (e != null) {
      failure.compareAndSet(null, e);
    }
  }

  /**
   * Reads the topic whole as a new group once to warm up, then again as
   * another new group, timed from the first record to the `count`-th:
   * poll, decode and handle each record, then commit what the poll gave
   * (commitAsync, after handling).
   */
  static Timed consume(String bootstrap, String topic, int count) throws java.io.IOException {
    read(bootstrap, topic, count);
    return read(bootstrap, topic, count);
  }

  static Timed read(String bootstrap, String topic, int count) throws java.io.IOException {
    Properties settings = new Properties();
    settings.put("bootstrap.servers", bootstrap);
    settings.put("group.id", "peer-java-" + UUID.randomUUID());
    settings.put("enable.auto.commit", "false");
    settings.put("auto.offset.reset", "earliest");
    settings.put("max.poll.records", "10000");
    settings.put("key.deserializer", ByteArrayDeserializer.class.getName());
    settings.put("value.deserializer", ByteArrayDeserializer.class.getName());
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(settings)) {
      consumer.subscribe(List.of(topic));
      int seen = 0;
      long first = 0;
      Cpu cpuFirst = null;
      long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
      while (true) {
        ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
        for (ConsumerRecord<byte[], byte[]> record : records) {
          OrderPlaced order = OrderPlaced.parseFrom(unframe(record.value()));
          if (order.getOrderId().isEmpty()) {
            throw new IllegalStateException("an event without its id");
          }
          seen++;
          if (seen == 1) {
            first = System.nanoTime();
            cpuFirst = Cpu.now();
          }
          if (seen == count) {
            long elapsed = System.nanoTime() - first;
            Cpu spent = Cpu.now().minus(cpuFirst);
            consumer.commitSync();
            return new Timed(elapsed / 1e9, spent);
          }
        }
        consumer.commitAsync();
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("read " + seen + " of " + count);
        }
      }
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The payload after the magic byte, the schema id and the message indexes. */
  static ByteBuffer unframe(byte[] value) {
    if (value.length < 6 || value[0] != 0) {
      throw new IllegalStateException("not in Confluent's wire format");
    }
    int at = 5;
    long count = zigzag(value, at);
    at = skip(value, at);
    for (long i = 0; i < count; i++) {
      at = skip(value, at);
    }
    return ByteBuffer.wrap(value, at, value.length - at);
  }

  static long zigzag(byte[] bytes, int at) {
    long raw = 0;
    for (int shift = 0; ; shift += 7) {
      byte b = bytes[at++];
      raw |= (long) (b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return (raw >>> 1) ^ -(raw & 1);
      }
    }
  }

  static int skip(byte[] bytes, int at) {
    while ((bytes[at++] & 0x80) != 0) {}
    return at;
  }
}
