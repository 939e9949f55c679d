// Command shopevents is the Go recipe for a Protobus contract: it consumes
// Protobus events with kafka-go, unframing Confluent's wire format and
// unmarshalling with the generated types, and publishes events through the
// Protobus ingest service with the generated gRPC client.
//
//	shopevents consume -bootstrap 127.0.0.1:9092 -topic shop.orders -group billing -count 10
//	shopevents publish -ingest 127.0.0.1:50051 -count 10
//
// Each event is printed as one JSON line: its type, key, headers and the
// event in proto3 JSON.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	ingestv1 "protobus.example/shopevents/gen/protobus/ingest/v1"
	commonv1 "protobus.example/shopevents/gen/shop/common/v1"
	_ "protobus.example/shopevents/gen/shop/customers/v1"
	ordersv1 "protobus.example/shopevents/gen/shop/orders/v1"
)

// Line is what the recipe prints per event.
type Line struct {
	Type    string            `json:"type"`
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
	Event   json.RawMessage   `json:"event"`
	// The registry id of the writer's schema (consumed events only).
	SchemaID uint32 `json:"schema_id,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: shopevents consume|publish [flags]")
	}
	var err error
	switch os.Args[1] {
	case "consume":
		err = consume(os.Args[2:])
	case "publish":
		err = publish(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

// consume reads count events in a consumer group, committing each after it
// was handled (printed), as Protobus's own consumers do.
func consume(args []string) error {
	flags := flag.NewFlagSet("consume", flag.ExitOnError)
	bootstrap := flags.String("bootstrap", "127.0.0.1:9092", "Kafka bootstrap servers")
	topic := flags.String("topic", "shop.orders", "topic to read")
	group := flags.String("group", "shopevents-go", "consumer group")
	count := flags.Int("count", 1, "events to read before exiting")
	timeout := flags.Duration("timeout", 60*time.Second, "give up after this long")
	_ = flags.Parse(args)

	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{*bootstrap},
		GroupID:     *group,
		Topic:       *topic,
		StartOffset: kafka.FirstOffset,
		MaxWait:     200 * time.Millisecond,
	})
	defer reader.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out := json.NewEncoder(os.Stdout)
	for read := 0; read < *count; read++ {
		record, err := reader.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %d of %d: %w", read, *count, err)
		}
		line, err := decode(record)
		if err != nil {
			return fmt.Errorf("%s/%d/%d: %w", record.Topic, record.Partition, record.Offset, err)
		}
		if err := out.Encode(line); err != nil {
			return err
		}
		if err := reader.CommitMessages(ctx, record); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	return nil
}

// decode unframes a record in Confluent's wire format (magic byte 0, the
// schema id, the message indexes, the Protobuf payload) and unmarshals the
// payload as the type its protobus-event-type header names.
func decode(record kafka.Message) (Line, error) {
	headers := map[string]string{}
	for _, h := range record.Headers {
		headers[h.Key] = string(h.Value)
	}
	typeName := headers["protobus-event-type"]
	messageType, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typeName))
	if err != nil {
		return Line{}, fmt.Errorf("event type %q is not in the generated code: %w", typeName, err)
	}
	schemaID, indexes, payload, err := unframe(record.Value)
	if err != nil {
		return Line{}, err
	}
	if want := indexesOf(messageType.Descriptor()); !equal(indexes, want) {
		return Line{}, fmt.Errorf("frame names message %v, header names %s at %v", indexes, typeName, want)
	}
	event := messageType.New().Interface()
	if err := proto.Unmarshal(payload, event); err != nil {
		return Line{}, err
	}
	text, err := protojson.Marshal(event)
	if err != nil {
		return Line{}, err
	}
	return Line{Type: typeName, Key: string(record.Key), Headers: headers, Event: text, SchemaID: schemaID}, nil
}

// unframe returns the schema id, the message indexes (zig-zag varints,
// count first) and the payload of a framed value.
func unframe(value []byte) (uint32, []int, []byte, error) {
	if len(value) < 6 || value[0] != 0 {
		return 0, nil, nil, errors.New("not in Confluent's wire format")
	}
	schemaID := binary.BigEndian.Uint32(value[1:5])
	buf := value[5:]
	count, n := binary.Varint(buf)
	if n <= 0 || count < 0 || count > 100 {
		return 0, nil, nil, errors.New("bad message index count")
	}
	buf = buf[n:]
	if count == 0 {
		return schemaID, []int{0}, buf, nil // the first message of the file
	}
	indexes := make([]int, count)
	for i := range indexes {
		index, n := binary.Varint(buf)
		if n <= 0 {
			return 0, nil, nil, errors.New("bad message index")
		}
		indexes[i] = int(index)
		buf = buf[n:]
	}
	return schemaID, indexes, buf, nil
}

// indexesOf is the position of a message among the messages of its file.
func indexesOf(message protoreflect.MessageDescriptor) []int {
	var path []int
	for d := protoreflect.Descriptor(message); ; {
		path = append([]int{d.Index()}, path...)
		parent, ok := d.Parent().(protoreflect.MessageDescriptor)
		if !ok {
			return path
		}
		d = parent
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// publish sends count OrderPlaced events in one Publish call; each result
// is an acknowledgement from Kafka, or a failure with the field at fault.
func publish(args []string) error {
	flags := flag.NewFlagSet("publish", flag.ExitOnError)
	address := flags.String("ingest", "127.0.0.1:50051", "ingest service address")
	count := flags.Int("count", 1, "events to publish")
	prefix := flags.String("id-prefix", "go", "prefix of the order ids")
	_ = flags.Parse(args)

	conn, err := grpc.NewClient(*address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ingestv1.NewIngestClient(conn)
	request := &ingestv1.PublishRequest{RequestId: 1}
	var orders []*ordersv1.OrderPlaced
	for i := 0; i < *count; i++ {
		order := &ordersv1.OrderPlaced{
			OrderId:    fmt.Sprintf("%s-order-%d", *prefix, i),
			CustomerId: fmt.Sprintf("%s-customer-%d", *prefix, i),
			Lines: []*ordersv1.LineItem{{
				Sku:       fmt.Sprintf("%s-sku-%d", *prefix, i),
				Quantity:  uint32(i%3 + 1),
				UnitPrice: &commonv1.Money{Currency: "EUR", MinorUnits: int64(250 * (i + 1))},
			}},
			Total:      &commonv1.Money{Currency: "EUR", MinorUnits: int64(250 * (i + 1) * (i%3 + 1))},
			PlacedAt:   timestamppb.New(time.Unix(1_800_000_000+int64(i), 0)),
			CouponCode: "GO",
		}
		payload, err := proto.Marshal(order)
		if err != nil {
			return err
		}
		orders = append(orders, order)
		request.Events = append(request.Events, &ingestv1.Event{
			Type:          string(order.ProtoReflect().Descriptor().FullName()),
			Payload:       &ingestv1.Event_Binary{Binary: payload},
			CorrelationId: fmt.Sprintf("%s-checkout-%d", *prefix, i),
			Headers:       []*ingestv1.Header{{Key: "x-origin", Value: []byte("go-recipe")}},
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	response, err := client.Publish(ctx, request)
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	for i, result := range response.Results {
		ack := result.GetAck()
		if ack == nil {
			return fmt.Errorf("event %d: %v", i, result.GetFailure())
		}
		text, err := protojson.Marshal(orders[i])
		if err != nil {
			return err
		}
		if err := out.Encode(Line{
			Type: string(orders[i].ProtoReflect().Descriptor().FullName()),
			Key:  orders[i].OrderId,
			Headers: map[string]string{
				"protobus-event-id":       ack.EventId,
				"protobus-correlation-id": request.Events[i].CorrelationId,
				"x-origin":                "go-recipe",
			},
			Event: text,
		}); err != nil {
			return err
		}
	}
	return nil
}
