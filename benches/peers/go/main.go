// Command peers produces and consumes the bench's events with the Go Kafka
// clients a team would otherwise pick: segmentio/kafka-go (the client of
// the Go template Protobus replaces) and twmb/franz-go (the fastest Go
// client), each written and tuned as its documentation recommends for
// throughput. Events are the example contract's OrderPlaced, generated from
// the exported contract, framed in Confluent's wire format with a cached
// schema id, with Protobus's headers.
//
//	peers produce -client franz-go -bootstrap 127.0.0.1:9092 -topic T -count 50000 -size 1024 -schema-id 1
//	peers consume -client kafka-go -bootstrap 127.0.0.1:9092 -topic T -count 50000
//
// Each run prints one JSON line: {"client":…,"events":…,"seconds":…,"rate":…,
// "cpu_us":…,"machine_cpu_us":…}, the last two the CPU time per event of this
// process and of the whole machine (the broker included) over the timed
// events.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	ordersv1 "protobus.bench/peers/gen/shop/orders/v1"
)

// Result is what a run prints.
type Result struct {
	Client     string  `json:"client"`
	Events     int     `json:"events"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"rate"`
	CPU        float64 `json:"cpu_us"`
	MachineCPU float64 `json:"machine_cpu_us"`
}

type options struct {
	command, client, bootstrap, topic, group string
	count, size, warmup                      int
	schemaID                                 uint32
}

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: peers produce|consume [flags]")
	}
	o := options{command: os.Args[1]}
	flags := flag.NewFlagSet(o.command, flag.ExitOnError)
	flags.StringVar(&o.client, "client", "franz-go", "kafka-go or franz-go")
	flags.StringVar(&o.bootstrap, "bootstrap", "127.0.0.1:9092", "Kafka bootstrap servers")
	flags.StringVar(&o.topic, "topic", "", "topic")
	flags.StringVar(&o.group, "group", "", "consumer group (consume; default: a new one)")
	flags.IntVar(&o.count, "count", 50000, "events to measure")
	flags.IntVar(&o.size, "size", 100, "encoded event size in bytes (produce)")
	flags.IntVar(&o.warmup, "warmup", 1000, "events sent before the clock starts (produce)")
	var schemaID uint
	flags.UintVar(&schemaID, "schema-id", 1, "the registry id of OrderPlaced's schema (produce)")
	_ = flags.Parse(os.Args[2:])
	o.schemaID = uint32(schemaID)
	if o.group == "" {
		o.group = fmt.Sprintf("peer-%s-%d", o.client, time.Now().UnixNano())
	}
	var result Result
	var err error
	switch o.command + " " + o.client {
	case "produce kafka-go":
		result, err = produceKafkaGo(o)
	case "produce franz-go":
		result, err = produceFranz(o)
	case "consume kafka-go":
		result, err = consumeKafkaGo(o)
	case "consume franz-go":
		result, err = consumeFranz(o)
	default:
		err = fmt.Errorf("unknown command %q with client %q", o.command, o.client)
	}
	if err != nil {
		log.Fatal(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode(result)
}

// event is the i-th event of `size` encoded bytes, as the Rust side builds it.
func event(i, size int) *ordersv1.OrderPlaced {
	order := &ordersv1.OrderPlaced{
		OrderId:    fmt.Sprintf("order-%08d", i),
		CustomerId: fmt.Sprintf("customer-%d", i%100),
	}
	if pad := size - (proto.Size(order) + 3); pad > 0 {
		order.CouponCode = strings.Repeat("x", pad)
	}
	return order
}

// frame appends the Confluent frame of order to buf: magic byte, schema id,
// message indexes ([0]: the file's first message), payload.
func frame(buf []byte, schemaID uint32, order *ordersv1.OrderPlaced) ([]byte, error) {
	buf = append(buf, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(buf[len(buf)-5:], schemaID)
	return proto.MarshalOptions{}.MarshalAppend(buf, order)
}

// headers are Protobus's: event id and type (the record's timestamp is
// when it was sent).
func headers(i int) [2][2]string {
	return [2][2]string{
		{"protobus-event-id", "go-" + strconv.Itoa(i)},
		{"protobus-event-type", "shop.orders.v1.OrderPlaced"},
	}
}

func events(o options) []*ordersv1.OrderPlaced {
	out := make([]*ordersv1.OrderPlaced, o.count)
	for i := range out {
		out[i] = event(i, o.size)
	}
	return out
}

func result(client string, count int, elapsed time.Duration) Result {
	return Result{Client: client, Events: count, Seconds: elapsed.Seconds(), Rate: float64(count) / elapsed.Seconds()}
}

// produceKafkaGo writes with kafka-go's Writer in async mode (its
// documented way to throughput), batches flushed after 5 ms as linger.ms=5
// on the other sides, acks from all in-sync replicas, no compression.
// kafka-go has no idempotent producer.
func produceKafkaGo(o options) (Result, error) {
	var acked, failed atomic.Int64
	var lastErr atomic.Value
	w := &kafka.Writer{
		Addr:         kafka.TCP(strings.Split(o.bootstrap, ",")...),
		Topic:        o.topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Async:        true,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    10000,
		BatchBytes:   1 << 20,
		Completion: func(messages []kafka.Message, err error) {
			if err != nil {
				failed.Add(int64(len(messages)))
				lastErr.Store(err)
				return
			}
			acked.Add(int64(len(messages)))
		},
	}
	defer w.Close()
	send := func(orders []*ordersv1.OrderPlaced, first int) error {
		// WriteMessages takes a slice; chunks of 1024 keep the writer's
		// batches full without one giant call.
		chunk := make([]kafka.Message, 0, 1024)
		for i, order := range orders {
			value, err := frame(nil, o.schemaID, order)
			if err != nil {
				return err
			}
			h := headers(first + i)
			chunk = append(chunk, kafka.Message{
				Key:   []byte(order.OrderId),
				Value: value,
				Headers: []kafka.Header{
					{Key: h[0][0], Value: []byte(h[0][1])},
					{Key: h[1][0], Value: []byte(h[1][1])},
				},
			})
			if len(chunk) == cap(chunk) || i == len(orders)-1 {
				if err := w.WriteMessages(context.Background(), chunk...); err != nil {
					return err
				}
				chunk = make([]kafka.Message, 0, 1024)
			}
		}
		return nil
	}
	wait := func(total int64) error {
		for acked.Load()+failed.Load() < total {
			time.Sleep(200 * time.Microsecond)
		}
		if failed.Load() > 0 {
			return fmt.Errorf("%d not acknowledged: %v", failed.Load(), lastErr.Load())
		}
		return nil
	}
	return timed(o, "kafka-go", func(orders []*ordersv1.OrderPlaced, first int) error {
		if err := send(orders, first); err != nil {
			return err
		}
		return wait(int64(first + len(orders)))
	})
}

// produceFranz writes with franz-go's asynchronous Produce (idempotent by
// default, acks from all in-sync replicas), lingering 5 ms, no compression,
// with as many records buffered as librdkafka buffers by default.
func produceFranz(o options) (Result, error) {
	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(o.bootstrap, ",")...),
		kgo.DefaultProduceTopic(o.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(100000),
	)
	if err != nil {
		return Result{}, err
	}
	defer client.Close()
	ctx := context.Background()
	send := func(orders []*ordersv1.OrderPlaced, first int) error {
		var wg sync.WaitGroup
		var failure atomic.Value
		for i, order := range orders {
			value, err := frame(nil, o.schemaID, order)
			if err != nil {
				return err
			}
			h := headers(first + i)
			record := &kgo.Record{
				Key:   []byte(order.OrderId),
				Value: value,
				Headers: []kgo.RecordHeader{
					{Key: h[0][0], Value: []byte(h[0][1])},
					{Key: h[1][0], Value: []byte(h[1][1])},
				},
			}
			wg.Add(1)
			client.Produce(ctx, record, func(_ *kgo.Record, err error) {
				if err != nil {
					failure.Store(err)
				}
				wg.Done()
			})
		}
		wg.Wait()
		if err := failure.Load(); err != nil {
			return err.(error)
		}
		return nil
	}
	return timed(o, "franz-go", send)
}

// timed sends a warm-up of o.warmup events, then times o.count more; send
// returns once every event it was given is acknowledged.
func timed(o options, client string, send func(orders []*ordersv1.OrderPlaced, first int) error) (Result, error) {
	warm := make([]*ordersv1.OrderPlaced, o.warmup)
	for i := range warm {
		warm[i] = event(i, o.size)
	}
	if err := send(warm, 0); err != nil {
		return Result{}, err
	}
	orders := events(o)
	before := cpuNow()
	start := time.Now()
	if err := send(orders, o.warmup); err != nil {
		return Result{}, err
	}
	r := result(client, o.count, time.Since(start))
	r.CPU, r.MachineCPU = cpuNow().perEvent(before, o.count)
	return r, nil
}

// cpu is the CPU time, in seconds, this process (every thread, the
// runtime's and the collector's too) and the whole machine have used.
type cpu struct{ process, machine float64 }

func cpuNow() cpu {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		log.Fatal(err)
	}
	seconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return cpu{process: seconds(u.Utime) + seconds(u.Stime), machine: machineBusy()}
}

// perEvent is the CPU time from before to c, in µs per event.
func (c cpu) perEvent(before cpu, events int) (process, machine float64) {
	per := func(s float64) float64 { return s * 1e6 / float64(events) }
	return per(c.process - before.process), per(c.machine - before.machine)
}

// machineBusy reads /proc/stat's first line (`cpu user nice system idle
// iowait irq softirq steal …`, in 100ths of a second): every state but
// idle and waiting for I/O, as the Rust side counts.
func machineBusy() float64 {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		log.Fatal(err)
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	fields := strings.Fields(line)
	var busy float64
	for i := 1; i < len(fields) && i <= 8; i++ {
		ticks, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			log.Fatal(err)
		}
		if i != 4 && i != 5 {
			busy += ticks
		}
	}
	return busy / 100
}

// unframe returns the payload of a Confluent frame, after the magic byte,
// the schema id and the message indexes (zig-zag varints, count first).
func unframe(value []byte) ([]byte, error) {
	if len(value) < 6 || value[0] != 0 {
		return nil, fmt.Errorf("not in Confluent's wire format")
	}
	buf := value[5:]
	count, n := binary.Varint(buf)
	if n <= 0 || count < 0 {
		return nil, fmt.Errorf("bad message indexes")
	}
	buf = buf[n:]
	for ; count > 0; count-- {
		_, n := binary.Varint(buf)
		if n <= 0 {
			return nil, fmt.Errorf("bad message index")
		}
		buf = buf[n:]
	}
	return buf, nil
}

// clock notes the first and the last of count events.
type clock struct {
	count, seen int
	first       time.Time
	cpuFirst    cpu
}

func (c *clock) tick() bool {
	c.seen++
	if c.seen == 1 {
		c.first = time.Now()
		c.cpuFirst = cpuNow()
	}
	return c.seen == c.count
}

func (c *clock) result(client string) Result {
	// From the first event to the last, as the Rust side measures.
	r := result(client, c.count-1, time.Since(c.first))
	r.CPU, r.MachineCPU = cpuNow().perEvent(c.cpuFirst, c.count-1)
	return r
}

// consumeKafkaGo reads with a kafka-go Reader in a consumer group: fetch,
// decode, handle, then CommitMessages (committed every second in the
// background, as CommitInterval makes it), with fetches of up to 10 MB as
// its documentation suggests for throughput.
func consumeKafkaGo(o options) (Result, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        strings.Split(o.bootstrap, ","),
		GroupID:        o.group,
		Topic:          o.topic,
		StartOffset:    kafka.FirstOffset,
		MinBytes:       1,
		MaxBytes:       10e6,
		MaxWait:        20 * time.Millisecond,
		CommitInterval: time.Second,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := clock{count: o.count}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("after %d events: %w", c.seen, err)
		}
		payload, err := unframe(m.Value)
		if err != nil {
			return Result{}, err
		}
		var order ordersv1.OrderPlaced
		if err := proto.Unmarshal(payload, &order); err != nil {
			return Result{}, err
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return Result{}, err
		}
		if c.tick() {
			return c.result("kafka-go"), nil
		}
	}
}

// consumeFranz reads with franz-go in a consumer group: poll, decode and
// handle each record, then mark it for the periodic commit
// (AutoCommitMarks: only handled records are committed).
func consumeFranz(o options) (Result, error) {
	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(o.bootstrap, ",")...),
		kgo.ConsumerGroup(o.group),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
	)
	if err != nil {
		return Result{}, err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := clock{count: o.count}
	for {
		fetches := client.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			return Result{}, fmt.Errorf("after %d events: %w", c.seen, err)
		}
		done := false
		var failure error
		fetches.EachRecord(func(record *kgo.Record) {
			if done || failure != nil {
				return
			}
			payload, err := unframe(record.Value)
			if err == nil {
				var order ordersv1.OrderPlaced
				err = proto.Unmarshal(payload, &order)
			}
			if err != nil {
				failure = err
				return
			}
			client.MarkCommitRecords(record)
			done = c.tick()
		})
		if failure != nil {
			return Result{}, failure
		}
		if done {
			return c.result("franz-go"), nil
		}
	}
}
